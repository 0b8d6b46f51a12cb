"""Ready-to-paste code for this deployment: curl, the openai Python SDK, a notebook, `llm`, and
fetch with aipipe.js. `base` is the deployment's public origin as the browser sees it; with a
`demo_model` (an `aipipe serve --dev` relay with no provider key) every example calls it.
Runs under CPython and MicroPython.
"""

import json

OPENAI_MODEL = "gpt-4.1-nano"
OPENROUTER_MODEL = "openai/gpt-4.1-nano"
TOKEN_PLACEHOLDER = "$AIPIPE_TOKEN"


class Target:
    """Which provider path and model an example calls."""

    def __init__(self, provider: str, model: str):
        self.provider = provider
        self.model = model


def _shell_single_quote(text: str) -> str:
    return "'" + text.replace("'", "'\"'\"'") + "'"


def _shell_token(token: str, prefix: str = "") -> str:
    """A placeholder ($AIPIPE_TOKEN) must expand in the shell; a real token is quoted as is."""
    text = prefix + token
    return '"' + text + '"' if token.startswith("$") else _shell_single_quote(text)


def curl(base: str, token: str, target: Target) -> str:
    # Written out, not json.dumps'd: MicroPython's dicts do not keep key order.
    body = '{"model": "' + target.model + '", "messages": [{"role": "user", "content": "Hello!"}]}'
    # (No quotes inside f-string expressions: MicroPython cannot parse them.)
    auth = _shell_token(token, "Authorization: Bearer ")
    return "\n".join([
        f"curl {base}/{target.provider}/v1/chat/completions \\",
        f"  -H {auth} \\",
        "  -H 'Content-Type: application/json' \\",
        f"  -d {_shell_single_quote(body)}",
    ])


def _openai_client_lines(base: str, key: str, target: Target) -> list:
    url = json.dumps(base + "/" + target.provider + "/v1")
    model = json.dumps(target.model)
    return [
        "from openai import OpenAI",
        "",
        f"client = OpenAI(api_key={key}, base_url={url})",
        "reply = client.chat.completions.create(",
        f"    model={model},",
        '    messages=[{"role": "user", "content": "Hello!"}],',
        ")",
        "print(reply.choices[0].message.content)",
    ]


def python_openai(base: str, token: str, target: Target) -> str:
    if token.startswith("$"):
        key = 'os.environ["AIPIPE_TOKEN"]'
        # (No [*x] unpacking in list displays: MicroPython cannot parse it.)
        lines = ["import os", ""]
        lines.extend(_openai_client_lines(base, key, target))
    else:
        lines = _openai_client_lines(base, json.dumps(token), target)
    return "\n".join(lines)


def notebook(base: str, target: Target) -> str:
    """Asks for the token at run time, so it never ends up saved in the notebook."""
    lines = [
        "# In Jupyter or Colab: paste your AI Pipe token when asked (it is not saved)",
        "import os",
        "from getpass import getpass",
        "",
        'if "AIPIPE_TOKEN" not in os.environ:',
        '    os.environ["AIPIPE_TOKEN"] = getpass("AI Pipe token: ")',
        "",
    ]
    return "\n".join(lines + _openai_client_lines(base, 'os.environ["AIPIPE_TOKEN"]', target))


def llm_cli(base: str, token: str, target: Target) -> str:
    return "\n".join([
        "# Add AI Pipe to llm's OpenAI-compatible models, then store the token as a key",
        'cat >> "$(dirname "$(llm logs path)")/extra-openai-models.yaml" <<\'EOF\'',
        "- model_id: aipipe",
        f"  model_name: {target.model}",
        f"  api_base: {base}/{target.provider}/v1",
        "  api_key_name: aipipe",
        "EOF",
        f"llm keys set aipipe --value {_shell_token(token)}",
        'llm -m aipipe "Hello!"',
    ])


def js_fetch(base: str, target: Target) -> str:
    url = base + "/" + target.provider + "/v1/chat/completions"
    return "\n".join([
        '<script type="module">',
        'import { getProfile, login } from "' + base + '/aipipe.js";',
        "",
        "const { token } = getProfile();  // picks up the token after the sign-in redirect",
        f"if (!token) login();             // off to {base}/login, then back here",
        "else {",
        '  const response = await fetch("' + url + '", {',
        '    method: "POST",',
        '    headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },',
        "    body: JSON.stringify({",
        f'      model: "{target.model}",',
        '      messages: [{ role: "user", content: "Hello!" }],',
        "    }),",
        "  });",
        "  console.log((await response.json()).choices[0].message.content);",
        "}",
        "</script>",
    ])


def all_snippets(base: str, token: str = TOKEN_PLACEHOLDER, demo_model=None):
    """[(id, title, code)] in the order the pages show them (short titles: they are tabs)."""
    base = base.rstrip("/")
    if demo_model:
        openai = openrouter = Target("openai", demo_model)
    else:
        openai, openrouter = Target("openai", OPENAI_MODEL), Target("openrouter", OPENROUTER_MODEL)
    return [
        ("curl", "curl", curl(base, token, openai)),
        ("python", "Python", python_openai(base, token, openai)),
        ("notebook", "Notebook", notebook(base, openai)),
        ("llm", "llm", llm_cli(base, token, openrouter)),
        ("js", "Web page", js_fetch(base, openrouter)),
    ]
