"""Simon Willison's `llm` command, configured the two ways its docs give for an OpenAI-compatible
endpoint: a model in `extra-openai-models.yaml` with its key under `llm keys set`, and the default
OpenAI models with OPENAI_BASE_URL / OPENAI_API_KEY. `llm` asks for stream usage itself, so the
relay forwards the usage chunk to it, and `llm` logs the tokens it was told."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from tests.clients.conftest import REPLY, User, assert_recorded, assert_streamed

LLM = str(Path(sys.executable).parent / "llm")


def llm_env(home: Path, **extra: str) -> dict[str, str]:
    """`llm`'s own settings in `home`; none of the developer's OpenAI settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "LLM_"))}
    return {**env, "LLM_USER_PATH": str(home), "PYTHONUNBUFFERED": "1", **extra}


def run_streamed(args: list[str], env: dict[str, str]) -> tuple[str, list[float]]:
    """Run `llm` and read its output as it is printed: (text, arrival time of each piece)."""
    proc = subprocess.Popen([LLM, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None
    text, arrivals = b"", []
    while piece := proc.stdout.read1(4096):
        arrivals.append(time.monotonic())
        text += piece
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err.decode()
    return text.decode(), arrivals


def logged(env: dict[str, str]) -> dict:
    """The last response `llm` logged."""
    out = subprocess.run([LLM, "logs", "-n", "1", "--json"], env=env, capture_output=True,
                         text=True, timeout=60, check=True).stdout
    [entry] = json.loads(out)
    return entry


def test_extra_openai_model_with_a_stored_key(user: User, tmp_path: Path) -> None:
    """extra-openai-models.yaml names the relay as `api_base` and a key alias; the reply streams
    piece by piece and the cost is recorded; `llm` logs the tokens the relay's ledger holds."""
    (tmp_path / "extra-openai-models.yaml").write_text(f"""\
- model_id: aipipe-gpt-4o-mini
  model_name: gpt-4o-mini
  api_base: "{user.stack.url}/openai/v1"
  api_key_name: aipipe
""")
    env = llm_env(tmp_path)
    subprocess.run([LLM, "keys", "set", "aipipe", "--value", user.token], env=env, check=True,
                   timeout=60)
    text, arrivals = run_streamed(["-m", "aipipe-gpt-4o-mini", "Say hello"], env)
    assert text.strip() == REPLY
    assert_streamed(arrivals)
    [row] = user.rows(1)
    assert_recorded(user, row, "openai", "gpt-4o-mini", streamed=True)
    entry = logged(env)
    assert (entry["input_tokens"], entry["output_tokens"]) == (row["input_tokens"], row["output_tokens"])


def test_default_model_with_openai_base_url(user: User, tmp_path: Path) -> None:
    """`llm -m gpt-4o-mini` with OPENAI_BASE_URL and OPENAI_API_KEY pointing at the relay."""
    env = llm_env(tmp_path, OPENAI_BASE_URL=f"{user.stack.url}/openai/v1", OPENAI_API_KEY=user.token)
    text, arrivals = run_streamed(["-m", "gpt-4o-mini", "Say hello"], env)
    assert text.strip() == REPLY
    assert_streamed(arrivals)
    [row] = user.rows(1)
    assert row["model"] == "gpt-4o-mini" and row["outcome"] == "ok" and row["cost"] > 0
    assert_recorded(user, row, "openai", "gpt-4o-mini", streamed=True)
