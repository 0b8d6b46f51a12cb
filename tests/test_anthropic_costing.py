"""Anthropic Messages usage, as the API reports it, priced from the table: input after the last
cache breakpoint, cache reads and writes (5-minute and 1-hour), output with thinking; dated model
ids priced as their family; streams combine message_start's input with message_delta's output."""

from __future__ import annotations

from decimal import Decimal

import pytest

from relay.costing.cost import compute_cost
from relay.costing.pricing import PriceTable
from relay.costing.usage import Usage, usage_from_json
from relay.providers.sse import StreamUsageReader

M = Decimal(1_000_000)


@pytest.fixture(scope="module")
def table() -> PriceTable:
    return PriceTable.load()


@pytest.mark.parametrize(
    ("model", "family_input", "family_output"),
    [
        ("claude-sonnet-4-5-20250929", "3.00", "15.00"),
        ("claude-opus-4-1-20250805", "15.00", "75.00"),
        ("claude-opus-4-20250514", "15.00", "75.00"),
        ("claude-opus-4-5-20251101", "5.00", "25.00"),  # not the dearer claude-opus-4
        ("claude-haiku-4-5-20251001", "1.00", "5.00"),
        ("claude-3-5-haiku-latest", "0.80", "4.00"),
        ("claude-3-7-sonnet-20250219", "3.00", "15.00"),
    ],
)
def test_dated_ids_resolve_to_their_family(table, model, family_input, family_output) -> None:
    """A dated or -latest id is priced as its family, never as a shorter, different family."""
    price = table.lookup("anthropic", model)
    assert price is not None
    assert (price.input, price.output) == (Decimal(family_input), Decimal(family_output))


def test_message_usage_with_both_cache_kinds_is_priced_exactly(table) -> None:
    """input_tokens excludes the cache; reads bill at 0.1x, 5-minute writes 1.25x, 1-hour
    writes 2x the input price; output at the output price."""
    body = {"usage": {"input_tokens": 100, "cache_creation_input_tokens": 1000,
                      "cache_read_input_tokens": 2000, "output_tokens": 50,
                      "cache_creation": {"ephemeral_5m_input_tokens": 600,
                                         "ephemeral_1h_input_tokens": 400}}}
    usage = usage_from_json("anthropic", body)
    assert usage == Usage(input_tokens=3100, output_tokens=50, cached_input_tokens=2000,
                          cache_write_tokens=1000, cache_write_1h_tokens=400)
    cost, source = compute_cost(table.lookup("anthropic", "claude-sonnet-4-5"), usage)
    expected = (100 * Decimal("3") + 600 * Decimal("3.75") + 400 * Decimal("6")
                + 2000 * Decimal("0.30") + 50 * Decimal("15")) / M
    assert (cost, source) == (expected, "computed")


def test_long_prompts_bill_at_the_long_context_tier(table) -> None:
    """Sonnet 4.5 above 200k prompt tokens (1M-context beta): $6 / $22.50 for the whole call."""
    usage = usage_from_json("anthropic", {"usage": {"input_tokens": 250_000, "output_tokens": 1000}})
    cost, _ = compute_cost(table.lookup("anthropic", "claude-sonnet-4-5"), usage)
    assert cost == (250_000 * Decimal("6") + 1000 * Decimal("22.50")) / M


def _sse(events: list[tuple[str, str]]) -> bytes:
    return b"".join(f"event: {name}\ndata: {data}\n\n".encode() for name, data in events)


START = ('message_start', '{"type":"message_start","message":{"id":"msg_1","type":"message",'
         '"role":"assistant","content":[],"model":"claude-sonnet-4-5-20250929","stop_reason":null,'
         '"usage":{"input_tokens":25,"cache_creation_input_tokens":10,"cache_read_input_tokens":5,'
         '"output_tokens":1}}}')
DELTA = ('content_block_delta', '{"type":"content_block_delta","index":0,'
         '"delta":{"type":"text_delta","text":"Hello world, how are you"}}')


def test_a_stream_combines_start_input_with_final_output() -> None:
    """message_start's input and cache counts plus the last message_delta's output count."""
    reader = StreamUsageReader("anthropic")
    reader.feed(_sse([START, ("ping", '{"type": "ping"}'), DELTA,
                      ("message_delta", '{"type":"message_delta","delta":{"stop_reason":"end_turn"},'
                                        '"usage":{"output_tokens":15}}'),
                      ("message_stop", '{"type":"message_stop"}')]))
    reader.close()
    assert reader.usage == Usage(input_tokens=40, output_tokens=15, cached_input_tokens=5,
                                 cache_write_tokens=10)
    assert reader.done and reader.model == "claude-sonnet-4-5-20250929"


def test_a_cut_stream_estimates_its_output_from_the_text_seen() -> None:
    """Cut before message_delta: message_start's output count (1) is a placeholder, so the
    output is estimated from the streamed text and the usage is marked estimated."""
    reader = StreamUsageReader("anthropic")
    reader.feed(_sse([START, DELTA]))
    reader.close()
    usage = reader.usage
    assert usage is not None and usage.estimated
    assert usage.input_tokens == 40 and usage.output_tokens == 6  # 24 characters / 4
    assert not reader.done


def test_an_error_event_mid_stream_is_read() -> None:
    """Anthropic's `event: error` (e.g. overloaded) is the stream's error."""
    reader = StreamUsageReader("anthropic")
    reader.feed(_sse([START, DELTA, ("error", '{"type":"error","error":{"type":"overloaded_error",'
                                              '"message":"Overloaded"}}')]))
    assert reader.error == {"type": "overloaded_error", "message": "Overloaded"}


def test_thinking_and_tool_input_count_as_output_text() -> None:
    """Estimates count thinking deltas and tool-input JSON as output, not just text."""
    reader = StreamUsageReader("anthropic")
    reader.feed(_sse([START,
                      ("content_block_delta", '{"type":"content_block_delta","index":0,"delta":'
                                              '{"type":"thinking_delta","thinking":"abcd"}}'),
                      ("content_block_delta", '{"type":"content_block_delta","index":1,"delta":'
                                              '{"type":"input_json_delta","partial_json":"{\\"a\\":1}"}}')]))
    assert reader.output_chars == 4 + 7


@pytest.mark.parametrize("model", ["claude-opus-4-9", "claude-sonnet-4-7", "claude-haiku-4-6-20260101"])
def test_an_unlisted_minor_version_is_not_priced_as_its_major(table, model) -> None:
    """A single-digit suffix is a model's minor version, not a build: claude-opus-4-9 is not
    priced as claude-opus-4 ($15/$75) but left unpriced (refused before the provider)."""
    assert table.lookup("anthropic", model) is None
