"""The playground's "show code": the very request the page sends (same model, messages,
temperature, max tokens, streaming), as curl, Python (openai SDK) and JavaScript (fetch).
The token is read from $AIPIPE_TOKEN (or aipipe.js in a page), never pasted into the code.
Runs under CPython and MicroPython.
"""

import json

import handoff

TOKEN_ENV = "AIPIPE_TOKEN"
SDK_BASES = {"openai": "/openai/v1", "openrouter": "/openrouter/v1"}


def _quote(text: str) -> str:
    """POSIX shell single quotes."""
    return "'" + text.replace("'", "'\"'\"'") + "'"


def pretty(value, indent: int = 0, py: bool = False) -> str:
    """JSON with 2-space indents, keys in the order given: (key, value) pair lists are objects,
    so the code shows model, messages, ... in a stable order. `py`: as a Python literal (the
    same text but True/False/None)."""
    pad, inner = "  " * indent, "  " * (indent + 1)
    if isinstance(value, list) and value and _is_pairs(value):
        items = [inner + json.dumps(k) + ": " + pretty(v, indent + 1, py) for k, v in value]
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(value, dict):
        keys = sorted(value, key=lambda k: (k != "role", k))  # role before content
        return pretty([(k, value[k]) for k in keys], indent, py)
    if isinstance(value, list):
        if not value:
            return "[]"
        return "[\n" + ",\n".join(inner + pretty(v, indent + 1, py) for v in value) + "\n" + pad + "]"
    if py and (value is None or isinstance(value, bool)):
        return repr(value)
    return json.dumps(value)


def _is_pairs(value) -> bool:
    return all(isinstance(i, tuple) and len(i) == 2 and isinstance(i[0], str) for i in value)


def curl(base: str, path: str, body) -> str:
    return "\n".join([
        "# export " + TOKEN_ENV + "=...   (your token from " + base + "/login)",
        "curl -N " + base + path + " \\",
        '  -H "Authorization: Bearer $' + TOKEN_ENV + '" \\',
        "  -H 'Content-Type: application/json' \\",
        "  -d " + _quote(pretty(body)),
    ])




def python(base: str, provider: str, body) -> str:
    lines = [
        "import os",
        "",
        "from openai import OpenAI",
        "",
        "client = OpenAI(",
        "    api_key=os.environ[" + json.dumps(TOKEN_ENV) + "],",
        "    base_url=" + json.dumps(base + SDK_BASES.get(provider, "/openai/v1")) + ",",
        ")",
        "stream = client.chat.completions.create(",
    ]
    for key, value in body:
        lines.append("    " + key + "=" + pretty(value, 1, py=True) + ",")
    lines += [
        ")",
        "for chunk in stream:",
        "    if chunk.choices and chunk.choices[0].delta.content:",
        '        print(chunk.choices[0].delta.content, end="", flush=True)',
        "print()",
    ]
    return "\n".join(lines)


def scratchpad(body) -> str:
    """The request as a /scratchpad cell: the aipipe module there holds the token and the
    relay's address, and routes a model with a "/" to OpenRouter."""
    lines = ["import aipipe", ""]
    for key, value in body:
        if key == "messages":
            lines.append("messages = " + pretty(value, 0, py=True))
    lines += ["", "for piece in aipipe.stream(", "    messages,"]
    for key, value in body:
        if key not in ("messages", "stream"):
            lines.append("    " + key + "=" + pretty(value, 1, py=True) + ",")
    lines += ["):", '    print(piece, end="")', "print()"]
    return "\n".join(lines)


def scratchpad_link(body) -> str:
    """/scratchpad opening with this request's code in the editor (in the fragment: it never
    reaches a server log)."""
    return "/scratchpad#code=" + handoff.quote(scratchpad(body))


def javascript(base: str, path: str, body) -> str:
    return "\n".join([
        '<script type="module">',
        'import { getProfile, login } from "' + base + '/aipipe.js";',
        "",
        "const { token } = getProfile();",
        "if (!token) login();  // sign in at AI Pipe, then come back here",
        "const response = await fetch(" + json.dumps(base + path) + ", {",
        '  method: "POST",',
        '  headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },',
        "  body: JSON.stringify(" + pretty(body, 1) + "),",
        "});",
        "// Server-Sent Events: one JSON chunk per `data:` line, then `data: [DONE]`",
        "const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();",
        'let buffer = "", text = "";',
        "for (;;) {",
        "  const { value, done } = await reader.read();",
        "  if (done) break;",
        "  buffer += value;",
        '  const lines = buffer.split("\\n");',
        "  buffer = lines.pop();",
        "  for (const line of lines) {",
        '    if (!line.startsWith("data: ") || line === "data: [DONE]") continue;',
        "    text += JSON.parse(line.slice(6)).choices?.[0]?.delta?.content ?? \"\";",
        "  }",
        "}",
        "console.log(text);",
        "</script>",
    ])


def all_code(base: str, provider: str, path: str, body) -> list:
    """[(id, title, code)] for pagekit.render_snippets."""
    base = base.rstrip("/")
    return [
        ("code-curl", "curl", curl(base, path, body)),
        ("code-python", "Python", python(base, provider, body)),
        ("code-js", "JavaScript", javascript(base, path, body)),
    ]
