"""web/py/snippets.py under CPython: the ready-to-paste code really runs as written."""

from __future__ import annotations

import ast
import importlib.util
import json
import shlex
from pathlib import Path

WEB_PY = Path(__file__).resolve().parents[1] / "web" / "py"
spec = importlib.util.spec_from_file_location("webpy_snippets", WEB_PY / "snippets.py")
assert spec and spec.loader
snippets = importlib.util.module_from_spec(spec)
spec.loader.exec_module(snippets)

BASE = "https://aipipe.example.org"
TOKEN = "eyJ.it's.$tok\"en"  # quotes and $ must survive the shell


def by_id(token: str = TOKEN) -> dict[str, str]:
    return {key: code for key, _title, code in snippets.all_snippets(BASE + "/", token)}


def test_curl_is_one_valid_command() -> None:
    """The curl snippet parses (shell quoting) to the chat URL, the token and a JSON body."""
    argv = shlex.split(by_id()["curl"].replace("\\\n", " "))
    assert argv[:2] == ["curl", BASE + "/openai/v1/chat/completions"]
    assert f"Authorization: Bearer {TOKEN}" in argv
    body = json.loads(argv[argv.index("-d") + 1])
    assert body["model"] == snippets.OPENAI_MODEL and body["messages"][0]["role"] == "user"


def test_curl_with_placeholder_expands_the_variable() -> None:
    """Without a token (landing page), curl reads $AIPIPE_TOKEN from the environment."""
    assert '-H "Authorization: Bearer $AIPIPE_TOKEN"' in by_id(snippets.TOKEN_PLACEHOLDER)["curl"]


def test_python_snippet_is_valid_and_points_here() -> None:
    """The openai SDK snippet compiles and passes this deployment's /openai/v1 and the token."""
    tree = ast.parse(by_id()["python"])
    call = next(n for n in ast.walk(tree) if isinstance(n, ast.Call)
                and getattr(n.func, "id", "") == "OpenAI")
    kwargs = {k.arg: ast.literal_eval(k.value) for k in call.keywords}
    assert kwargs == {"api_key": TOKEN, "base_url": BASE + "/openai/v1"}
    placeholder = by_id(snippets.TOKEN_PLACEHOLDER)["python"]
    ast.parse(placeholder)
    assert 'os.environ["AIPIPE_TOKEN"]' in placeholder


def test_llm_snippet_configures_an_openai_compatible_model() -> None:
    """llm gets a model entry with this deployment's OpenRouter base and the token as a key."""
    code = by_id()["llm"]
    assert f"  api_base: {BASE}/openrouter/v1" in code
    keys_line = next(line for line in code.splitlines() if line.startswith("llm keys set"))
    assert shlex.split(keys_line)[-1] == TOKEN


def test_js_snippet_imports_aipipe_js_from_here() -> None:
    """The web-page snippet imports this deployment's aipipe.js and calls its OpenRouter path."""
    code = by_id()["js"]
    assert f'from "{BASE}/aipipe.js"' in code
    assert f'fetch("{BASE}/openrouter/v1/chat/completions"' in code
    assert TOKEN not in code  # the page reads the token at run time


def test_notebook_snippet_asks_for_the_token() -> None:
    """The notebook example compiles and reads the token with getpass, never embedding it."""
    code = by_id()["notebook"]
    ast.parse(code)
    assert 'getpass("AI Pipe token: ")' in code and TOKEN not in code
    assert f'base_url="{BASE}/openai/v1"' in code


def test_demo_model_makes_every_example_call_it() -> None:
    """On a --dev relay with no provider key, every example calls /openai with the demo model
    (the only one that answers there)."""
    codes = {key: code for key, _t, code in snippets.all_snippets(BASE, TOKEN, "aipipe-demo")}
    for key, code in codes.items():
        assert "aipipe-demo" in code, key
        assert "/openrouter/" not in code, key
        assert f"{BASE}/openai/v1" in code, key
