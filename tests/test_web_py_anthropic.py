"""The playground's Claude support, pure parts under CPython: catalog.anthropic_models (Anthropic's
model list priced from /prices, dated ids by their family) and anthropic_chat (the Messages body,
and a reply read from the real event sequence the fake Anthropic sends)."""

from __future__ import annotations

import json
import shlex
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
    body = dict(anthropic_chat.request_body("claude-sonnet-4-5", messages, 100))
    assert body == {"model": "claude-sonnet-4-5", "max_tokens": 100, "system": "Sys",
                    "messages": messages[1:], "stream": True}
    bare = dict(anthropic_chat.request_body("m", messages[1:2]))
    assert bare["max_tokens"] == anthropic_chat.DEFAULT_MAX_TOKENS and "system" not in bare


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


# -- one code path for every provider (dialect) and Claude's "show code" (codegen) -------------
dialect, codegen = _load("dialect"), _load("codegen")
MESSAGES = [{"role": "system", "content": "It's terse"}, {"role": "user", "content": "Say hi"}]
CLAUDE_BODY = dialect.request_body("anthropic", "claude-sonnet-4-5", MESSAGES, 0.5, 20)


def test_dialect_picks_each_providers_body_headers_and_reader() -> None:
    """Claude gets the Messages body, the version header and a reader of its events; OpenAI and
    OpenRouter keep chat completions, with no extra header."""
    assert dict(CLAUDE_BODY)["system"] == "It's terse" and dict(CLAUDE_BODY)["max_tokens"] == 20
    assert "temperature" not in dict(CLAUDE_BODY)  # the anthropic SDK has no such parameter
    assert not dialect.takes_temperature("anthropic") and dialect.takes_temperature("openai")
    assert dialect.headers("anthropic") == [("anthropic-version", "2023-06-01")]
    claude = dialect.new_reply("anthropic")
    claude.add(json.dumps({"type": "content_block_delta", "index": 0,
                           "delta": {"type": "text_delta", "text": "Hi"}}))
    assert claude.text == "Hi"
    for provider in ("openai", "openrouter"):
        body = dialect.request_body(provider, "m", MESSAGES, 0.5, 20)
        assert body == chat.request_body(provider, "m", MESSAGES, 0.5, 20)
        assert dialect.headers(provider) == []
        reply = dialect.new_reply(provider)
        reply.add(json.dumps({"type": "content_block_delta", "index": 0,
                              "delta": {"type": "text_delta", "text": "Hi"}}))
        assert reply.text == ""  # not a chat-completions chunk
        reply.add(json.dumps({"choices": [{"delta": {"content": "Hi"}}]}))
        assert reply.text == "Hi"


def test_claude_curl_sends_the_token_as_the_key_with_the_version() -> None:
    """curl, split as a POSIX shell would: x-api-key and anthropic-version, the exact body."""
    code = codegen.curl("http://h", "/anthropic/v1/messages", CLAUDE_BODY, "anthropic")
    command = [line for line in code.split("\n") if not line.startswith("#")]
    words = shlex.split(" ".join(line.rstrip("\\") for line in command))
    assert words[:3] == ["curl", "-N", "http://h/anthropic/v1/messages"]
    headers = [words[i + 1] for i, word in enumerate(words) if word == "-H"]
    assert headers == ["x-api-key: $AIPIPE_TOKEN", "anthropic-version: 2023-06-01",
                       "Content-Type: application/json"]
    assert json.loads(words[words.index("-d") + 1]) == dict(CLAUDE_BODY)


def test_claude_python_uses_the_anthropic_sdk_with_the_same_arguments() -> None:
    """The anthropic SDK's `messages.stream()` with `<relay>/anthropic` as its base and the
    page's arguments (its own streaming replaces `stream`); tests/clients runs it for real."""
    code = codegen.python("http://h", "anthropic", CLAUDE_BODY)
    compile(code, "snippet.py", "exec")
    assert "import anthropic" in code and 'base_url="http://h/anthropic"' in code
    start = code.index("messages.stream(") + len("messages.stream(")
    call = code[start:code.index("\n) as stream:", start)]
    namespace: dict = {}
    exec(f"def f(**kw): return kw\nresult = f({call})", namespace)  # our own snippet
    assert namespace["result"] == {k: v for k, v in CLAUDE_BODY if k != "stream"}


def test_claude_javascript_reads_the_text_deltas() -> None:
    """The JS snippet sends the version header and the same body, and reads the text from the
    content_block_delta events (Claude's stream has no `choices`)."""
    code = codegen.javascript("http://h", "/anthropic/v1/messages", CLAUDE_BODY, "anthropic")
    assert '"anthropic-version": "2023-06-01"' in code
    assert 'event.type === "content_block_delta"' in code and "choices" not in code
    start = code.index("JSON.stringify(") + len("JSON.stringify(")
    assert json.loads(code[start:code.index("),\n});", start)]) == dict(CLAUDE_BODY)
    titles = [item[0] for item in codegen.all_code("http://h", "anthropic", "/p", CLAUDE_BODY)]
    assert titles == ["code-curl", "code-python", "code-js"]
