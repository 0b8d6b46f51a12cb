"""The playground's Claude support, pure parts under CPython: catalog.anthropic_models (Anthropic's
model list priced from /prices, dated ids by their family) and anthropic_chat (the Messages body,
and a reply read from the real event sequence the fake Anthropic sends)."""

from __future__ import annotations

import json
from decimal import Decimal

from starlette.testclient import TestClient

from testkit.fakes.protocol import DEFAULT_KEYS
from testkit.fakes.upstream import create_fake_upstream
from tests.test_web_py_playground import _load

catalog, chat, anthropic_chat = _load("catalog"), _load("chat"), _load("anthropic_chat")

PRICES = {"anthropic": {
    "claude-sonnet-4-5": {"input": 3.0, "output": 15.0, "cached_input": 0.3, "source": "s"},
    "claude-opus-4": {"input": 15.0, "output": 75.0, "source": "s"},
    "claude-opus-4-1": {"input": 15.0, "output": 75.0, "source": "s"},
}}


def test_claude_models_are_priced_by_their_family() -> None:
    """Dated ids take their family's price (the longest family, as the relay reads it); ids the
    relay cannot price are left out; Anthropic's display names are kept."""
    listing = {"data": [
        {"id": "claude-sonnet-4-5-20250929", "display_name": "Claude Sonnet 4.5"},
        {"id": "claude-opus-4-1-20250805", "display_name": "Claude Opus 4.1"},
        {"id": "claude-unpriced-9"},
        {"display_name": "no id"},
    ]}
    models = catalog.anthropic_models(listing, PRICES)
    assert [m["key"] for m in models] == ["anthropic:claude-opus-4-1-20250805",
                                         "anthropic:claude-sonnet-4-5-20250929"]
    sonnet = catalog.find(models, "anthropic:claude-sonnet-4-5-20250929")
    assert sonnet["name"] == "Claude Sonnet 4.5" and sonnet["cached"] == 300_000
    assert catalog.price_text(sonnet) == "$3.00 in · $15.00 out per 1M tokens"
    assert catalog.family("claude-opus-4-1-20250805", PRICES["anthropic"]) == "claude-opus-4-1"
    assert catalog.family("claude-opus-4-1-latest", PRICES["anthropic"]) == "claude-opus-4-1"
    assert catalog.CHAT_PATHS["anthropic"] == "/anthropic/v1/messages"
    assert [m["id"] for m in catalog.search(models, "anthropic sonnet")] == [
        "claude-sonnet-4-5-20250929"]


def test_the_messages_body_moves_the_system_prompt_and_names_max_tokens() -> None:
    """System messages become `system`; max_tokens is always sent (Anthropic requires it)."""
    messages = [{"role": "system", "content": "Sys"}, {"role": "user", "content": "a"},
                {"role": "assistant", "content": "A"}, {"role": "user", "content": "b"}]
    body = dict(anthropic_chat.request_body("claude-sonnet-4-5", messages, 0.5, 100))
    assert body == {"model": "claude-sonnet-4-5", "max_tokens": 100, "system": "Sys",
                    "messages": messages[1:], "temperature": 0.5, "stream": True}
    bare = dict(anthropic_chat.request_body("m", messages[1:2]))
    assert bare["max_tokens"] == anthropic_chat.DEFAULT_MAX_TOKENS and "system" not in bare
    assert "temperature" not in bare


def test_a_reply_is_read_from_the_real_event_sequence() -> None:
    """The fake Anthropic's stream (message_start, ping, text deltas, message_delta,
    message_stop; thinking deltas are not text) parses to the reply's text, stop reason and
    usage in OpenAI's shape, which the catalog prices."""
    fake = TestClient(create_fake_upstream())
    body = {"model": "claude-sonnet-4-5", "max_tokens": 2000, "stream": True,
            "thinking": {"type": "enabled", "budget_tokens": 1024},
            "messages": [{"role": "user", "content": "say hello to me"}]}
    r = fake.post("/anthropic/v1/messages", json=body, headers={
        "x-api-key": DEFAULT_KEYS["anthropic"], "anthropic-version": "2023-06-01",
        "x-fake": "cached"})
    parser, reply = chat.SSEParser(), anthropic_chat.Reply()
    for i in range(0, len(r.text), 7):  # split anywhere
        for data in parser.feed(r.text[i:i + 7]):
            reply.add(data)
    assert reply.text == "Hello from the fake upstream"  # the thinking is not in it
    assert reply.done and reply.finish == "end_turn"
    assert reply.usage == {"prompt_tokens": 4, "completion_tokens": 5 + 3,
                           "prompt_tokens_details": {"cached_tokens": 2}}
    model = catalog.anthropic_models({"data": [{"id": "claude-sonnet-4-5"}]}, PRICES)[0]
    pico, source = catalog.reply_cost(model, reply.usage)
    expected = (2 * Decimal("3") + 2 * Decimal("0.3") + 8 * Decimal("15")) / 10**6
    assert source == "computed" and Decimal(pico) / 10**12 == expected


def test_a_mid_stream_error_event_is_reported() -> None:
    reply = anthropic_chat.Reply()
    reply.add(json.dumps({"type": "error", "error": {"type": "overloaded_error",
                                                     "message": "Overloaded"}}))
    assert reply.error == "Overloaded" and not reply.done
    assert reply.add("not json") == "" and reply.add("[1]") == ""
