"""The README's own examples, taken from README.md and run against `aipipe serve --dev` (what
`make serve` starts), so an example that stops working fails here. Only the port (8787 in the
README) and the place of the venv are substituted; the Python snippet gets `TOKEN` defined."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from testkit.relay_process import ROOT, clean_env
from tests.clients.conftest import DevRelay, wait_for

README = ROOT / "README.md"
PORT = "127.0.0.1:8787"


def section(title: str) -> str:
    text = README.read_text()
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start: end if end > 0 else None]


def code_blocks(title: str, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", section(title), re.DOTALL)


def documents(text: str) -> list[object]:
    """The JSON documents printed one after the other (curl adds no separator)."""
    decoder, out, at = json.JSONDecoder(), [], 0
    while at < len(text.rstrip()):
        value, at = decoder.raw_decode(text, at)
        out.append(value)
        while at < len(text) and text[at].isspace():
            at += 1
    return out


def test_quick_start_curl_commands(dev_relay: DevRelay) -> None:
    """"Try it": the token from `aipipe token --dev`, a chat completion with curl, then /usage —
    run as written, in the relay's working directory."""
    [script] = [b for b in code_blocks("Quick start", "bash") if "curl" in b]
    aipipe = str(Path(sys.executable).parent / "aipipe")
    script = script.replace(PORT, dev_relay.url.removeprefix("http://"))
    script = script.replace(".venv/bin/aipipe", aipipe)
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=dev_relay.work,
                          env=clean_env(), capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    chat, usage = documents(done.stdout)
    assert isinstance(chat, dict) and isinstance(usage, dict), done.stdout
    assert chat["model"] == "aipipe-demo"
    assert "Hello" in chat["choices"][0]["message"]["content"]
    assert usage["email"] == "you@example.com"
    assert usage["cost"] > 0 and usage["limit"] == 1.0


def test_using_it_python_snippet(dev_relay: DevRelay) -> None:
    """"Using it": the openai snippet, with TOKEN set, prints the streamed reply to the end."""
    [snippet] = code_blocks("Using it", "python")
    email = "snippet@example.com"
    token = dev_relay.token(email)
    program = f"TOKEN = {token!r}\n" + snippet.replace(PORT, dev_relay.url.removeprefix("http://"))
    done = subprocess.run([sys.executable, "-c", program], env=clean_env(), capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "demo" in done.stdout and len(done.stdout.split()) > 10

    import httpx

    def recorded() -> bool:
        r = httpx.get(f"{dev_relay.url}/usage/requests", timeout=10,
                      headers={"Authorization": f"Bearer {token}"})
        rows = r.json()["data"]
        return bool(rows) and rows[0]["outcome"] == "ok" and rows[0]["streamed"] is True

    wait_for(recorded, 10, "the snippet's call in the ledger")
