"""The anthropic Python package (sync and async, `messages.create` and `messages.stream()`),
configured as its README says: `api_key` and `base_url` (or ANTHROPIC_API_KEY /
ANTHROPIC_BASE_URL) — the AI Pipe token as the key, `<relay>/anthropic` as the base."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

import anthropic
import pytest

from tests.clients.conftest import REPLY, Clock, User, assert_recorded, assert_streamed
from tests.test_web_py_playground import _load

MODEL = "claude-sonnet-4-5"  # a name in the price table, so the test reads its price by name
MESSAGES = [{"role": "user", "content": "Say hello"}]


def sync_client(user: User, **options: object) -> anthropic.Anthropic:
    return anthropic.Anthropic(api_key=user.token, base_url=f"{user.stack.url}/anthropic",
                               **options)


def test_create(user: User) -> None:
    """A plain message: the answer, its usage, the recorded cost; the provider was sent the
    operator's key and the SDK's anthropic-version."""
    reply = sync_client(user).messages.create(model=MODEL, max_tokens=1024, messages=MESSAGES)
    assert reply.content[0].type == "text" and reply.content[0].text == REPLY
    assert reply.usage.output_tokens == 5 and reply.stop_reason == "end_turn"
    [row] = user.rows(1)
    assert_recorded(user, row, "anthropic", MODEL, streamed=False)
    sent = user.stack.fake.state.received[-1]["headers"]
    assert sent["x-api-key"] == user.stack.env["ANTHROPIC_API_KEY"]
    assert sent["anthropic-version"] and "authorization" not in sent
    assert user.token not in str(user.stack.fake.state.received[-1])


def test_messages_stream(user: User) -> None:
    """`messages.stream()`: the SDK's accumulator needs Anthropic's event sequence (it reads
    every event, including the relay's cost comment, without complaint); text arrives piece by
    piece; the cost is message_start's input and message_delta's output."""
    clock = Clock()
    with sync_client(user).messages.stream(model=MODEL, max_tokens=1024,
                                           messages=MESSAGES) as stream:
        for text in stream.text_stream:
            clock.piece(text)
        final = stream.get_final_message()
    assert clock.text == final.content[0].text == REPLY
    assert final.usage.output_tokens == 5
    assert_streamed(clock.arrivals)
    [row] = user.rows(1)
    assert_recorded(user, row, "anthropic", MODEL, streamed=True)


def test_async_create_and_stream(user: User) -> None:
    """AsyncAnthropic: `messages.create(stream=True)` read event by event, and `messages.stream()`."""

    async def run() -> tuple[Clock, str]:
        client = anthropic.AsyncAnthropic(api_key=user.token,
                                          base_url=f"{user.stack.url}/anthropic")
        clock = Clock()
        events = await client.messages.create(model=MODEL, max_tokens=1024, messages=MESSAGES,
                                              stream=True)
        async for event in events:
            if event.type == "content_block_delta" and event.delta.type == "text_delta":
                clock.piece(event.delta.text)
        async with client.messages.stream(model=MODEL, max_tokens=1024,
                                          messages=MESSAGES) as stream:
            final = await stream.get_final_message()
        await client.close()
        return clock, final.content[0].text

    clock, text = asyncio.run(run())
    assert clock.text == text == REPLY
    assert_streamed(clock.arrivals)
    first, second = user.rows(2)
    assert_recorded(user, second, "anthropic", MODEL, streamed=True)
    assert first["outcome"] == "ok" and first["cost"] == second["cost"]


def test_an_abandoned_stream_is_still_charged(user: User) -> None:
    """A client that stops reading after the first words and closes the stream: the relay
    records the call as aborted, charged for the prompt and the words that went out."""
    with sync_client(user).messages.stream(model=MODEL, max_tokens=1024,
                                           messages=MESSAGES) as stream:
        for text in stream.text_stream:
            assert text
            break  # leaving the block closes the connection mid-stream
    [row] = user.rows(1)
    assert (row["outcome"], row["cost_source"], row["streamed"]) == ("aborted", "estimated", True)
    assert row["cost"] > 0 and row["input_tokens"] == 2  # message_start's input was read


def test_count_tokens_and_models_are_free(user: User) -> None:
    client = sync_client(user)
    counted = client.messages.count_tokens(model=MODEL, messages=MESSAGES)
    assert counted.input_tokens == 2
    assert "claude-sonnet-4-5-20250929" in {m.id for m in client.models.list()}
    rows = user.rows(2)
    assert [(r["cost"], r["cost_source"]) for r in rows] == [(0, "free"), (0, "free")]


def test_environment_variables(user: User, monkeypatch: pytest.MonkeyPatch) -> None:
    """ANTHROPIC_API_KEY and ANTHROPIC_BASE_URL, with no arguments at all."""
    monkeypatch.setenv("ANTHROPIC_API_KEY", user.token)
    monkeypatch.setenv("ANTHROPIC_BASE_URL", f"{user.stack.url}/anthropic")
    reply = anthropic.Anthropic().messages.create(model=MODEL, max_tokens=64, messages=MESSAGES)
    assert reply.content[0].text == REPLY
    assert user.rows(1)[0]["cost"] > 0


def test_over_budget_is_a_rate_limit_error_without_retries(user: User) -> None:
    """A user whose budget cannot pay for any reply gets RateLimitError (429,
    `insufficient_quota`) at once: the relay says `x-should-retry: false`, which the SDK obeys."""
    small = user.stack.user("small.example")  # $0.50
    client = sync_client(small, max_retries=3)
    with pytest.raises(anthropic.RateLimitError) as raised:
        client.messages.create(model="claude-opus-4-1", max_tokens=4096,
                               messages=[{"role": "user", "content": "x" * 200_000}])
    assert raised.value.status_code == 429 and "insufficient_quota" in str(raised.value.body)
    [row] = small.rows(1)  # asked once: no retries
    assert (row["status"], row["outcome"]) == (429, "refused")
    assert user.stack.fake.state.received == []  # never forwarded


def test_the_playgrounds_python_code_runs_as_shown(user: User) -> None:
    """The playground's "show code" for a Claude model (web/py/codegen.py), run as a user runs
    it — `python snippet.py` with AIPIPE_TOKEN set — streams the reply and is recorded."""
    codegen, dialect = _load("codegen"), _load("dialect")
    body = dialect.request_body("anthropic", MODEL, [{"role": "system", "content": "Be brief."},
                                                     {"role": "user", "content": "Say hello"}],
                                0.5, 64)
    code = codegen.python(user.stack.url, "anthropic", body)
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         env={**os.environ, "AIPIPE_TOKEN": user.token}, check=False)
    assert run.returncode == 0, run.stderr
    assert run.stdout == REPLY + "\n"
    [row] = user.rows(1)
    assert_recorded(user, row, "anthropic", MODEL, streamed=True)
    sent = user.stack.fake.state.received[-1]
    assert sent["headers"]["x-api-key"] == user.stack.env["ANTHROPIC_API_KEY"]
