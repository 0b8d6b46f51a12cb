"""The pure cost function: documented usage × the shipped price table, to the exact Decimal."""

from __future__ import annotations

from decimal import Decimal

import pytest

from relay.costing.cost import compute_cost, estimate_cost, estimate_tokens, reserve_estimate
from relay.costing.pricing import Price, PriceTable
from relay.costing.usage import Usage, usage_from_speech_request

TABLE = PriceTable.load()


def _price(provider: str, model: str) -> Price:
    price = TABLE.lookup(provider, model)
    assert price is not None, model
    return price


D = Decimal
# (name, provider, model, usage, expected USD). The usages are those of tests/test_usage.py,
# read from the providers' documented responses; each cost is worked out in the comment.
CASES: list[tuple[str, str, str, Usage, Decimal]] = [
    # 19 × $2.00 + 10 × $8.00 per 1M
    ("chat", "openai", "gpt-4.1-2025-04-14", Usage(input_tokens=19, output_tokens=10),
     D("0.000118")),
    # cached input at the cached price only: 129 × 2.00 + 11904 × 0.50 + 44 × 8.00
    ("cached input", "openai", "gpt-4.1-2025-04-14",
     Usage(input_tokens=12033, output_tokens=44, cached_input_tokens=11904), D("0.006562")),
    # reasoning is inside output_tokens: 75 × 1.10 + 1186 × 4.40 (not + 1024 more)
    ("reasoning", "openai", "o4-mini-2025-04-16",
     Usage(input_tokens=75, output_tokens=1186, reasoning_tokens=1024), D("0.0053009")),
    # 8 × 0.10
    ("embeddings", "openai", "text-embedding-ada-002", Usage(input_tokens=8), D("0.0000008")),
    # text in 10 × 5.00 + image in 40 × 10.00 + image out 50 × 40.00 (images not also billed)
    ("gpt-image-1", "openai", "gpt-image-1",
     Usage(input_tokens=50, output_tokens=50, image_input_tokens=40, image_output_tokens=50,
           images=1), D("0.00245")),
    # 2 × $0.04 per image
    ("dall-e-3", "openai", "dall-e-3", Usage(images=2), D("0.08")),
    # audio in 14 × 6.00 + text out 45 × 10.00
    ("transcribe tokens", "openai", "gpt-4o-transcribe",
     Usage(input_tokens=14, output_tokens=45, audio_input_tokens=14), D("0.000534")),
    # 9 s × $0.006 / 60 s
    ("whisper seconds", "openai", "whisper-1", Usage(audio_seconds=D(9)), D("0.0009")),
    ("whisper verbose", "openai", "whisper-1", Usage(audio_seconds=D("8.470000267028809")),
     D("0.0008470000267028809")),
    # text in 14 × 0.60 + audio out 101 × 12.00
    ("speech tokens", "openai", "gpt-4o-mini-tts",
     Usage(input_tokens=14, output_tokens=101, audio_output_tokens=101), D("0.0012204")),
    # text in 20 × 2.50 + audio in 100 × 40 + text out 19 × 10 + audio out 78 × 80
    ("chat audio", "openai", "gpt-4o-audio-preview-2024-12-17",
     Usage(input_tokens=120, output_tokens=97, audio_input_tokens=100, audio_output_tokens=78),
     D("0.01048")),
    # 1000 × 1.00 + 500 × 2.00 (the built-in demo model's nominal price)
    ("demo", "openai", "aipipe-demo", Usage(input_tokens=1000, output_tokens=500), D("0.002")),
    # Gemini thinking billed as output: 34 × 0.30 + (418 + 438) × 2.50
    ("gemini thinking", "gemini", "gemini-2.5-flash",
     Usage(input_tokens=34, output_tokens=856, reasoning_tokens=438), D("0.0021502")),
    # 1500 × 1.25 + 10000 cached × 0.125 + (1000 + 10000) × 10.00
    ("gemini cached", "gemini", "gemini-2.5-pro",
     Usage(input_tokens=11500, output_tokens=11000, cached_input_tokens=10000,
           reasoning_tokens=10000), D("0.113125")),
    # at the threshold: 200000 × 1.25 + 1000 × 10.00
    ("gemini tier edge", "gemini", "gemini-2.5-pro",
     Usage(input_tokens=200_000, output_tokens=1000), D("0.26")),
    # above it the whole call is at the long-context tier: 250000 × 2.50 + 1000 × 15.00
    ("gemini long context", "gemini", "gemini-2.5-pro",
     Usage(input_tokens=250_000, output_tokens=1000), D("0.64")),
    # long context with cache: 50000 × 2.50 + 200000 × 0.25 + 0
    ("gemini long cached", "gemini", "gemini-2.5-pro",
     Usage(input_tokens=250_000, cached_input_tokens=200_000), D("0.175")),
    # (9 + 20 tool) × 0.30 + 800 audio × 1.00 + 50 × 2.50
    ("gemini audio", "gemini", "gemini-2.5-flash",
     Usage(input_tokens=829, output_tokens=50, audio_input_tokens=800), D("0.0009337")),
    # 12 × 0.50 + 640 audio out × 10.00
    ("gemini speech", "gemini", "gemini-2.5-flash-preview-tts",
     Usage(input_tokens=12, output_tokens=640, audio_output_tokens=640), D("0.006406")),
    # free of charge, and it is a real $0 (the provider reported the tokens)
    ("free embedding", "gemini", "text-embedding-004", Usage(input_tokens=1000), D(0)),
]


@pytest.mark.parametrize(
    ("name", "provider", "model", "usage", "expected"), CASES, ids=[c[0] for c in CASES]
)
def test_computed_cost_is_exact(
    name: str, provider: str, model: str, usage: Usage, expected: Decimal
) -> None:
    """Each token kind is billed at its own price, exactly, and marked `computed`."""
    assert compute_cost(_price(provider, model), usage) == (expected, "computed")


def test_reported_cost_wins_over_any_price() -> None:
    """A cost the provider reported is the cost, with or without a price, marked `reported`."""
    usage = Usage(input_tokens=194, output_tokens=2, reported_cost=D("19.95"))
    assert compute_cost(None, usage) == (D("19.95"), "reported")
    assert compute_cost(_price("openai", "gpt-4o"), usage) == (D("19.95"), "reported")


def test_tts1_bills_characters_not_token_estimates() -> None:
    """tts-1 is priced per character: exact, `computed`, whatever the token estimates say."""
    usage = usage_from_speech_request({"model": "tts-1", "input": "x" * 1000})
    assert compute_cost(_price("openai", "tts-1"), usage) == (D("0.015"), "computed")
    assert compute_cost(_price("openai", "tts-1-hd"), usage) == (D("0.03"), "computed")


def test_estimated_token_counts_are_marked_estimated() -> None:
    """Token counts the relay estimated (speech, Gemini embeddings) cost as `estimated`."""
    usage = usage_from_speech_request({"model": "gpt-4o-mini-tts", "input": "x" * 100})
    # 25 text tokens × 0.60 + 140 audio tokens × 12.00
    assert compute_cost(_price("openai", "gpt-4o-mini-tts"), usage) == (
        D("0.001695"), "estimated",
    )
    embed = Usage(input_tokens=40, estimated=True)
    assert compute_cost(_price("gemini", "gemini-embedding-001"), embed) == (
        D("0.000006"), "estimated",
    )


@pytest.mark.parametrize(
    ("price", "usage"),
    [
        (None, Usage(input_tokens=10, output_tokens=10)),
        # whisper-1 billed per minute, but no duration came back
        ("whisper-1", Usage(input_tokens=10)),
        # a token-priced model with only seconds: nothing can bill them
        ("gpt-4o-transcribe", Usage(audio_seconds=D(30))),
        # text output from a model with no text output price
        ("gpt-4o-mini-tts", Usage(input_tokens=5, output_tokens=7)),
        # images from a per-image model without a count
        ("dall-e-3", Usage(input_tokens=50, output_tokens=50)),
        # an embedding model asked to bill output tokens
        ("text-embedding-3-small", Usage(input_tokens=5, output_tokens=5)),
    ],
)
def test_unknown_cost_is_none_never_zero(price: str | None, usage: Usage) -> None:
    """Usage that the price cannot bill is unknown (None) so the relay estimates — never $0."""
    assert compute_cost(_price("openai", price) if price else None, usage) is None


def test_empty_usage_costs_nothing() -> None:
    """A provider that reports zero tokens owes nothing (a real $0, not a missing one)."""
    assert compute_cost(_price("openai", "gpt-4o"), Usage()) == (D(0), "computed")


def test_inconsistent_counts_never_bill_negative_tokens() -> None:
    """Cached/audio counts larger than the input are capped, so no bucket goes negative."""
    usage = Usage(input_tokens=10, cached_input_tokens=50, audio_input_tokens=5,
                  output_tokens=3, audio_output_tokens=9)
    # all 10 input tokens cached (× 1.25); all 3 output tokens are audio, billed at text
    # output for gpt-4o (no audio price): 10 × 1.25 + 3 × 10.00
    assert compute_cost(_price("openai", "gpt-4o"), usage) == (D("0.0000425"), "computed")


def test_per_request_fee_is_added_once() -> None:
    """An OpenRouter-style per-request fee is added to the token cost once per call."""
    price = Price(input=D(1), output=D(2), per_request=D("0.005"), source="s", date="d")
    assert compute_cost(price, Usage(input_tokens=1_000_000)) == (D("1.005"), "computed")


@pytest.mark.parametrize(
    ("n", "tokens"), [(-3, 0), (0, 0), (1, 1), (4, 1), (5, 2), (4000, 1000), (4001, 1001)]
)
def test_estimate_tokens_rounds_up_at_four_chars(n: int, tokens: int) -> None:
    """≈ 4 characters a token, rounded up so any text is at least one token."""
    assert estimate_tokens(n) == tokens


def test_estimate_cost_uses_text_prices_and_the_tier() -> None:
    """Estimates price input and output at the model's text rates, in the right tier."""
    assert estimate_cost(_price("openai", "gpt-4o-mini"), input_tokens=1000, output_tokens=100) \
        == D("0.00021")
    pro = _price("gemini", "gemini-2.5-pro")
    assert estimate_cost(pro, input_tokens=300_000, output_tokens=0) == D("0.75")
    assert estimate_cost(_price("openai", "gpt-4o-mini-tts"), input_tokens=100,
                         output_tokens=100) == D("0.00126")  # audio output rate is the fallback
    assert estimate_cost(_price("openai", "whisper-1"), input_tokens=100, output_tokens=10) == 0


def test_reserve_estimate_is_an_upper_bound() -> None:
    """Reservations take the dearest input and output rates, never less than the estimate."""
    audio = _price("openai", "gpt-4o-audio-preview")
    # 1000 × 40 (audio in) + 500 × 80 (audio out)
    assert reserve_estimate(audio, 1000, 500) == D("0.08")
    assert reserve_estimate(audio, 1000, 500) >= estimate_cost(
        audio, input_tokens=1000, output_tokens=500
    )
    mini = _price("openai", "gpt-4o-mini")
    assert reserve_estimate(mini, 1000, 100) == estimate_cost(
        mini, input_tokens=1000, output_tokens=100
    )
    pro = _price("gemini", "gemini-2.5-pro")
    assert reserve_estimate(pro, 300_000, 1000) == D("0.765")  # long-context tier
    fee = Price(input=D(1), output=D(1), per_request=D("0.01"), source="s", date="d")
    assert reserve_estimate(fee, 0, 0) == D("0.01")
