"""The openai npm package under Node (ESM), installed by scripts/setup.sh into tests/clients/node
(nothing is fetched at run time): a chat completion and a stream read with the naive loop."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.clients.conftest import REPLY, User, assert_recorded, assert_streamed

NODE_DIR = Path(__file__).parent / "node"


def test_chat_and_stream(user: User) -> None:
    """`chat.completions.create` plain and streamed; the stream's text arrives piece by piece
    and `chunk.choices[0].delta.content` never meets a chunk without choices."""
    node = shutil.which("node")
    if node is None or not (NODE_DIR / "node_modules" / "openai").is_dir():
        pytest.fail("node or the openai npm package is missing: run `bash scripts/setup.sh`")
    env = {**os.environ, "AIPIPE_URL": user.stack.url, "AIPIPE_TOKEN": user.token}
    done = subprocess.run([node, "openai_client.mjs"], cwd=NODE_DIR, env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    chat, *deltas, end = lines
    assert chat["kind"] == "chat" and chat["text"] == REPLY
    assert chat["usage"]["completion_tokens"] == 5
    assert end == {"kind": "done"}
    assert "".join(d["text"] for d in deltas) == REPLY
    assert_streamed([d["ms"] / 1000 for d in deltas if d["text"]])
    first, second = user.rows(2)
    assert_recorded(user, second, "openai", "gpt-4o-mini", streamed=True)
    assert (first["streamed"], first["outcome"]) == (False, "ok") and first["cost"] > 0
