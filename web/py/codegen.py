"""The playground's "show code": the very request the page sends (same model, messages,
temperature, max tokens, streaming), as curl, Python (the openai SDK, or the anthropic SDK for
Claude) and JavaScript (fetch).
The token is read from $AIPIPE_TOKEN (or aipipe.js in a page), never pasted into the code.
Runs under CPython and MicroPython.
"""

import json

import handoff

TOKEN_ENV = "AIPIPE_TOKEN"
SDK_BASES = {"openai": "/openai/v1", "openrouter": "/openrouter/v1", "anthropic": "/anthropic"}
ANTHROPIC_VERSION = "2023-06-01"  # the Messages API's version header (anthropic_chat sends it)


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


def curl(base: str, path: str, body, provider: str = "openai") -> str:
    lines = ["# export " + TOKEN_ENV + "=...   (your token from " + base + "/login)",
             "curl -N " + base + path + " \\"]
    if provider == "anthropic":  # the token goes where Anthropic's key goes
        lines += ['  -H "x-api-key: $' + TOKEN_ENV + '" \\',
                  "  -H 'anthropic-version: " + ANTHROPIC_VERSION + "' \\"]
    else:
        lines.append('  -H "Authorization: Bearer $' + TOKEN_ENV + '" \\')
    lines += ["  -H 'Content-Type: application/json' \\", "  -d " + _quote(pretty(body))]
    return "\n".join(lines)


def python(base: str, provider: str, body) -> str:
    """The openai SDK's streamed chat completion, or for Claude the anthropic SDK's
    `messages.stream()` (which streams by itself, so the body's `stream` is left out)."""
    if provider == "anthropic":
        return _python_sdk("import anthropic", "anthropic.Anthropic", base + SDK_BASES["anthropic"],
                           "with client.messages.stream(", [(k, v) for k, v in body if k != "stream"],
                           [") as stream:", "    for text in stream.text_stream:",
                            '        print(text, end="", flush=True)'])
    return _python_sdk("from openai import OpenAI", "OpenAI",
                       base + SDK_BASES.get(provider, "/openai/v1"),
                       "stream = client.chat.completions.create(", body,
                       [")", "for chunk in stream:",
                        "    if chunk.choices and chunk.choices[0].delta.content:",
                        '        print(chunk.choices[0].delta.content, end="", flush=True)'])


def _python_sdk(imports: str, client_class: str, base_url: str, call: str, arguments,
                reading: list) -> str:
    """A snippet: import the SDK, a client on this relay with $AIPIPE_TOKEN as its key, `call`
    with `arguments` as keywords, then `reading` prints the text as it arrives."""
    lines = ["import os", "", imports, "", "client = " + client_class + "(",
             "    api_key=os.environ[" + json.dumps(TOKEN_ENV) + "],",
             "    base_url=" + json.dumps(base_url) + ",", ")", call]
    for key, value in arguments:
        lines.append("    " + key + "=" + pretty(value, 1, py=True) + ",")
    lines += reading
    lines.append("print()")
    return "\n".join(lines)


def scratchpad(body) -> str:
    """The request as a /scratchpad cell: the aipipe module there holds the token and the
    relay's address, and routes a model with a "/" to OpenRouter and a claude-... one to
    Anthropic (where `system=` becomes the Messages API's top-level system)."""
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


def javascript(base: str, path: str, body, provider: str = "openai") -> str:
    claude = provider == "anthropic"
    headers = ('{ Authorization: `Bearer ${token}`, "Content-Type": "application/json",\n'
               '             "anthropic-version": "' + ANTHROPIC_VERSION + '" }') if claude else \
        '{ Authorization: `Bearer ${token}`, "Content-Type": "application/json" }'
    comment = "// Server-Sent Events: one JSON event per `data:` line; the text is in the " + \
        "content_block_delta events" if claude else \
        "// Server-Sent Events: one JSON chunk per `data:` line, then `data: [DONE]`"
    take = [
        '    if (!line.startsWith("data: ")) continue;',
        "    const event = JSON.parse(line.slice(6));",
        '    if (event.type === "content_block_delta" && event.delta.type === "text_delta") '
        "text += event.delta.text;",
    ] if claude else [
        '    if (!line.startsWith("data: ") || line === "data: [DONE]") continue;',
        "    text += JSON.parse(line.slice(6)).choices?.[0]?.delta?.content ?? \"\";",
    ]
    lines = [
        '<script type="module">',
        'import { getProfile, login } from "' + base + '/aipipe.js";',
        "",
        "const { token } = getProfile();",
        "if (!token) login();  // sign in at AI Pipe, then come back here",
        "const response = await fetch(" + json.dumps(base + path) + ", {",
        '  method: "POST",',
        "  headers: " + headers + ",",
        "  body: JSON.stringify(" + pretty(body, 1) + "),",
        "});",
        comment,
        "const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();",
        'let buffer = "", text = "";',
        "for (;;) {",
        "  const { value, done } = await reader.read();",
        "  if (done) break;",
        "  buffer += value;",
        '  const lines = buffer.split("\\n");',
        "  buffer = lines.pop();",
        "  for (const line of lines) {",
    ]
    lines += take  # (MicroPython has no [*take] in a list display)
    lines += ["  }", "}", "console.log(text);", "</script>"]
    return "\n".join(lines)


def all_code(base: str, provider: str, path: str, body) -> list:
    """[(id, title, code)] for pagekit.render_snippets."""
    base = base.rstrip("/")
    return [
        ("code-curl", "curl", curl(base, path, body, provider)),
        ("code-python", "Python", python(base, provider, body)),
        ("code-js", "JavaScript", javascript(base, path, body, provider)),
    ]
