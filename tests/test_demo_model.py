"""The `--dev` demo model answers the last user message with a short Markdown reply, streamed in
whole words in OpenAI's own shapes."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

import httpx
import pytest

from relay.providers import demo_model
from relay.providers.demo_model import DEMO_MODEL, DemoTransport, last_user_text, reply_words


@pytest.fixture(autouse=True)
def _no_pacing(monkeypatch: pytest.MonkeyPatch) -> None:
    """The shapes are under test here, not the pace."""
    monkeypatch.setattr(demo_model, "CHUNK_DELAY", 0)


def post(path: str, body: dict[str, Any]) -> httpx.Response:
    async def go() -> httpx.Response:
        async with httpx.AsyncClient(transport=DemoTransport(), base_url="http://demo") as client:
            r = await client.post(path, json=body)
            await r.aread()
            return r

    return asyncio.run(go())


def events(r: httpx.Response) -> list[dict[str, Any]]:
    return [json.loads(line[6:]) for line in r.text.splitlines()
            if line.startswith("data: {")]


CONVERSATION = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "What is an API key?"},
    {"role": "assistant", "content": "A secret that identifies a caller."},
    {"role": "user", "content": [{"type": "text", "text": "Show me a list"}]},
]


def test_it_answers_the_last_user_message_in_markdown() -> None:
    """A multi-turn chat: the reply quotes the last user message only, and holds a Markdown
    list and a fenced code block."""
    r = post("/v1/chat/completions", {"model": DEMO_MODEL, "messages": CONVERSATION})
    text = r.json()["choices"][0]["message"]["content"]
    assert text.startswith("[AI Pipe demo model]")
    assert "“Show me a list”" in text
    assert "API key?" not in text and "terse" not in text
    assert re.search(r"^- \S", text, re.MULTILINE)
    assert re.search(r"^```python\n.+\n```$", text, re.MULTILINE | re.DOTALL)


def test_last_user_text_reads_chat_and_responses_inputs() -> None:
    assert last_user_text({"messages": CONVERSATION}) == "Show me a list"
    assert last_user_text({"input": "plain"}) == "plain"
    assert last_user_text({"input": [
        {"role": "user", "content": [{"type": "input_text", "text": "first"}]},
        {"role": "user", "content": [{"type": "input_text", "text": "second"}]}]}) == "second"
    assert last_user_text({"messages": [{"role": "system", "content": "x"}]}) == ""


def test_pieces_are_whole_words_that_join_into_the_reply() -> None:
    """Each streamed piece is one word with the spacing after it; together they are the reply
    exactly, line breaks included. A long message is quoted in whole words."""
    pieces = reply_words("zebra " * 100)
    assert all(re.fullmatch(r"\S+\s*", p) for p in pieces)
    assert "".join(pieces).count("zebra") == 24 and "zebra …”" in "".join(pieces)


def test_chat_stream_is_whole_words_and_usage_only_when_asked() -> None:
    """The streamed chat: role, one word per chunk, stop; the usage chunk only with
    `stream_options.include_usage`, as OpenAI does."""
    body = {"model": DEMO_MODEL, "messages": CONVERSATION, "stream": True}
    plain = events(post("/v1/chat/completions", body))
    assert all(e["choices"] for e in plain)
    words = [e["choices"][0]["delta"].get("content") for e in plain[1:-1]]
    assert "".join(words) == "".join(reply_words("Show me a list"))
    asked = events(post("/v1/chat/completions", {**body, "stream_options": {"include_usage": True}}))
    assert asked[-1]["choices"] == [] and asked[-1]["usage"]["completion_tokens"] == len(words)


@pytest.mark.parametrize("limit", [1, 5])
def test_output_limit_cuts_at_a_word(limit: int) -> None:
    r = post("/v1/chat/completions", {"model": DEMO_MODEL, "messages": CONVERSATION,
                                      "max_completion_tokens": limit})
    reply = r.json()
    assert reply["usage"]["completion_tokens"] == limit
    assert reply["choices"][0]["message"]["content"] == "".join(reply_words("Show me a list")[:limit])


def test_responses_stream_follows_openai_event_sequence() -> None:
    """The streamed Responses API: created, in progress, item and content part added, text
    deltas, each closed, completed with usage; sequence numbers count up."""
    r = post("/v1/responses", {"model": DEMO_MODEL, "input": "Show me a list", "stream": True})
    assert r.headers["content-type"] == "text/event-stream"
    got = events(r)
    kinds = [e["type"] for e in got]
    deltas = kinds.count("response.output_text.delta")
    assert kinds == ["response.created", "response.in_progress", "response.output_item.added",
                     "response.content_part.added", *["response.output_text.delta"] * deltas,
                     "response.output_text.done", "response.content_part.done",
                     "response.output_item.done", "response.completed"]
    assert [e["sequence_number"] for e in got] == list(range(len(got)))
    done = got[-1]["response"]
    assert done["status"] == "completed" and done["usage"]["output_tokens"] == deltas
    assert done["output"][0]["content"][0]["text"] == "".join(
        e["delta"] for e in got if e["type"] == "response.output_text.delta")


def test_other_models_get_a_clear_404() -> None:
    r = post("/v1/chat/completions", {"model": "gpt-4o-mini", "messages": CONVERSATION,
                                      "stream": True})
    assert r.status_code == 404 and "OPENAI_API_KEY" in r.json()["error"]["message"]
