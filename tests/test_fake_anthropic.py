"""The fake Anthropic speaks the Messages API as the real one does: the anthropic SDK's own
parsers read its answers, streams (every event type) and errors."""

from __future__ import annotations

import anthropic
import pytest

from testkit.fakes.protocol import DEFAULT_KEYS
from testkit.fakes.server import serve_asgi
from testkit.fakes.upstream import create_fake_upstream

KEY = DEFAULT_KEYS["anthropic"]
MODEL = "claude-sonnet-4-5-20250929"
ASK = [{"role": "user", "content": "two words"}]


@pytest.fixture(scope="module")
def fake() -> tuple[str, object]:
    app = create_fake_upstream()
    with serve_asgi(app) as url:
        yield f"{url}/anthropic", app


def test_a_message_parses_and_is_billed(fake) -> None:
    """A JSON message: content, stop reason and usage as the SDK types read them."""
    base, app = fake
    client = anthropic.Anthropic(api_key=KEY, base_url=base)
    msg = client.messages.create(model=MODEL, max_tokens=100, messages=ASK)
    assert msg.content[0].type == "text" and msg.content[0].text.startswith("Hello")
    assert msg.stop_reason == "end_turn"
    assert (msg.usage.input_tokens, msg.usage.output_tokens) == (2, 5)
    assert app.state.billed[-1]["usage"]["output_tokens"] == 5


def test_the_stream_is_the_real_event_sequence(fake) -> None:
    """messages.stream() assembles the text and final usage from the fake's events."""
    base, _ = fake
    client = anthropic.Anthropic(api_key=KEY, base_url=base)
    with client.messages.stream(model=MODEL, max_tokens=100, messages=ASK) as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_message()
    assert kinds[0] == "message_start" and "message_stop" in kinds
    assert {"content_block_start", "content_block_delta", "content_block_stop",
            "message_delta"} <= set(kinds)
    assert final.usage.output_tokens == 5 and final.content[0].text.startswith("Hello")


def test_max_tokens_bounds_the_reply_and_thinking_counts_as_output(fake) -> None:
    """A reply stops at max_tokens; a thinking block's tokens are output too."""
    base, _ = fake
    client = anthropic.Anthropic(api_key=KEY, base_url=base)
    short = client.messages.create(model=MODEL, max_tokens=2, messages=ASK)
    assert short.stop_reason == "max_tokens" and short.usage.output_tokens == 2
    thought = client.messages.create(model=MODEL, max_tokens=2000, messages=ASK,
                                     thinking={"type": "enabled", "budget_tokens": 1024})
    assert [b.type for b in thought.content] == ["thinking", "text"]
    assert thought.usage.output_tokens == 5 + 3


def test_errors_have_anthropics_shape(fake) -> None:
    """A wrong key is an AuthenticationError; an error event mid-stream raises in the SDK."""
    base, _ = fake
    with pytest.raises(anthropic.AuthenticationError):
        anthropic.Anthropic(api_key="sk-ant-wrong", base_url=base).messages.create(
            model=MODEL, max_tokens=10, messages=ASK)
    client = anthropic.Anthropic(api_key=KEY, base_url=base, max_retries=0)
    stream = client.messages.stream(model=MODEL, max_tokens=10, messages=ASK,
                                    extra_headers={"x-fake": "streamerror"})
    with pytest.raises(anthropic.APIStatusError, match="Overloaded"), stream as events:
        for _ in events:
            pass


def test_token_counts_and_models_are_served(fake) -> None:
    """count_tokens and the model list, as the SDK reads them."""
    base, _ = fake
    client = anthropic.Anthropic(api_key=KEY, base_url=base)
    assert client.messages.count_tokens(model=MODEL, messages=ASK).input_tokens == 2
    assert MODEL in [m.id for m in client.models.list()]
