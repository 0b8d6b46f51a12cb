"""The litellm SDK, configured as its docs say for an OpenAI-compatible endpoint: the model as
`openai/<name>` with `api_base` and `api_key`. It runs in its own process, as in a user's script,
with LITELLM_LOCAL_MODEL_COST_MAP set so it reads its bundled price list instead of fetching one."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.clients.conftest import REPLY, User, assert_recorded, assert_streamed

SCRIPT = """
import json, os, sys, time
import litellm

config = dict(model="openai/gpt-4o-mini", api_base=os.environ["AIPIPE_URL"] + "/openai/v1",
              api_key=os.environ["AIPIPE_TOKEN"], messages=[{"role": "user", "content": "Say hello"}])
reply = litellm.completion(**config)
print(json.dumps({"kind": "chat", "text": reply.choices[0].message.content,
                  "usage": reply.usage.model_dump()}), flush=True)
for run in ("first", "second"):
    for chunk in litellm.completion(**config, stream=True):
        print(json.dumps({"kind": run, "t": time.monotonic(),
                          "text": chunk.choices[0].delta.content or ""}), flush=True)
"""


def test_completion_and_stream(user: User) -> None:
    """`litellm.completion` plain and streamed (twice, read with the naive loop): the answer,
    its usage, text arriving piece by piece, and each call recorded with its cost. litellm's
    first streamed call loads its streaming code (over a second here) while the answer waits in
    the socket, so the pace is measured on the second."""
    env = {**{k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "LITELLM_"))},
           "AIPIPE_URL": user.stack.url, "AIPIPE_TOKEN": user.token,
           "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    done = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    chat, *deltas = [json.loads(line) for line in done.stdout.splitlines()]
    assert chat["text"] == REPLY and chat["usage"]["completion_tokens"] == 5
    for run in ("first", "second"):
        assert "".join(d["text"] for d in deltas if d["kind"] == run) == REPLY
    assert_streamed([d["t"] for d in deltas if d["kind"] == "second" and d["text"]])
    plain, *streams = user.rows(3)
    assert (plain["streamed"], plain["outcome"]) == (False, "ok") and plain["cost"] > 0
    assert_recorded(user, streams[-1], "openai", "gpt-4o-mini", streamed=True)
    assert streams[0]["cost"] == streams[1]["cost"]
