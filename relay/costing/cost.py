"""What a call cost: pure arithmetic over a Price and a Usage (no I/O, exact Decimals)."""

from __future__ import annotations

from decimal import Decimal

from relay.costing.pricing import Price
from relay.costing.usage import Usage

MILLION = Decimal(1_000_000)
_SIXTY = Decimal(60)
CHARS_PER_TOKEN = 4


def compute_cost(price: Price | None, usage: Usage) -> tuple[Decimal, str] | None:
    """The USD cost of one call and where it came from, or None when it cannot be known.

    - A cost the provider reported wins: `(usage.reported_cost, "reported")`.
    - Otherwise the price's tier for the prompt size applies (Gemini long context) and:
      token-priced models bill each token kind at its own price — cached input at the cached
      price *instead of* the input price, audio/image tokens at their prices (falling back to
      the plain input/output price when the model has none), reasoning as output (it is
      already inside `output_tokens`, see `Usage`); a token kind the usage has but the price
      cannot bill makes the cost unknown (None), never $0. Per-minute, per-character and
      per-image units are billed when the price has them; a model priced only in units
      ignores token counts. Usage that nothing in the price can bill (seconds for a
      token-priced model, no duration for whisper-1) is unknown (None), never $0.
    - Source is "estimated" when the token counts were the relay's estimate
      (`usage.estimated`) and the model is token-priced, or the units were estimated too
      (`usage.estimated_units`), else "computed".
    Cached tokens of any modality bill at `cached_input` (Gemini's dearer cached-audio price
    is not modelled). The result is exact (not rounded); round only for display.
    """
    if usage.reported_cost is not None:
        return usage.reported_cost, "reported"
    if price is None:
        return None
    p = price.for_prompt(usage.input_tokens)
    total = Decimal(0)
    billed = False
    if p.token_priced:
        tokens = _token_cost(p, usage)
        if tokens is None:
            return None
        total += tokens
        billed = usage.input_tokens > 0 or usage.output_tokens > 0
    units = _unit_cost(p, usage)
    if units is not None:
        total += units
        billed = True
    if not billed and _has_usage(usage):
        return None  # e.g. whisper-1 with no duration, or seconds for a token-priced model
    if p.per_request is not None:
        total += p.per_request
    estimated = usage.estimated and (p.token_priced or usage.estimated_units)
    source = "estimated" if estimated else "computed"
    return total, source


def _token_cost(p: Price, u: Usage) -> Decimal | None:
    inp = u.input_tokens
    cached = min(u.cached_input_tokens, inp)
    write = min(u.cache_write_tokens, inp - cached)
    write_1h = min(u.cache_write_1h_tokens, write)
    audio_in = min(u.audio_input_tokens, inp - cached - write)
    image_in = min(u.image_input_tokens, inp - cached - write - audio_in)
    text_in = inp - cached - write - audio_in - image_in
    out = u.output_tokens
    audio_out = min(u.audio_output_tokens, out)
    image_out = min(u.image_output_tokens, out - audio_out)
    text_out = out - audio_out - image_out
    buckets = (
        (text_in, p.input),
        (cached, _first(p.cached_input, p.input)),
        (write - write_1h, _first(p.cache_write, p.input)),
        (write_1h, _first(p.cache_write_1h, p.cache_write, p.input)),
        (audio_in, _first(p.audio_input, p.input)),
        (image_in, _first(p.image_input, p.input)),
        (text_out, p.output),
        (audio_out, _first(p.audio_output, p.output)),
        (image_out, _first(p.image_output, p.output)),
    )
    total = Decimal(0)
    for count, rate in buckets:
        if count > 0:
            if rate is None:
                return None
            total += count * rate
    return total / MILLION


def _unit_cost(p: Price, u: Usage) -> Decimal | None:
    """Cost of the non-token units the price bills, or None when none of them applied."""
    total: Decimal | None = None
    if p.per_minute is not None and u.audio_seconds > 0:
        total = (total or Decimal(0)) + u.audio_seconds * p.per_minute / _SIXTY
    if p.per_1m_chars is not None and u.input_characters > 0:
        total = (total or Decimal(0)) + u.input_characters * p.per_1m_chars / MILLION
    if p.per_image is not None and u.images > 0:
        total = (total or Decimal(0)) + u.images * p.per_image
    return total


def _has_usage(u: Usage) -> bool:
    return bool(
        u.input_tokens or u.output_tokens or u.audio_seconds or u.input_characters or u.images
    )


def _first(*rates: Decimal | None) -> Decimal | None:
    for rate in rates:
        if rate is not None:
            return rate
    return None


def estimate_tokens(text_or_bytes_len: int) -> int:
    """Tokens in a text of this many characters (or UTF-8 bytes): ⌈n / 4⌉.

    Error bounds, measured against OpenAI's o200k_base tokenizer (Gemini's runs close to it on
    Latin text): English prose 4.7 characters a token (this over-estimates by ~18%), Python
    code 4.9 (+23%), indented JSON 3.8 (-5%), French 5.1 (+28%) — so Latin-script text lands
    within -5%..+30%, mostly on the side of charging a little more. Chinese and Japanese run
    1.1-1.4 characters (3.4-4.3 UTF-8 bytes) a token: counting characters under-estimates them
    ~3x, counting bytes stays within -15%..+7%. Hindi runs 3.7 characters (9.8 bytes) a token:
    characters -8%, bytes +146%. Used only where the provider sent no usage (aborted streams,
    Gemini embeddings, speech) and for reservations, and such costs are marked `estimated`.
    """
    if text_or_bytes_len <= 0:
        return 0
    return -(-text_or_bytes_len // CHARS_PER_TOKEN)


def estimate_cost(price: Price, *, input_tokens: int, output_tokens: int) -> Decimal:
    """Cost of estimated token counts at the model's text prices (its tier for that prompt).

    For a model with no token prices (whisper-1, tts-1, dall-e) only `per_request` counts, so
    callers should check `price.token_priced` before relying on this."""
    p = price.for_prompt(input_tokens)
    in_rate = _first(p.input, p.audio_input, p.image_input) or Decimal(0)
    out_rate = _first(p.output, p.audio_output, p.image_output) or Decimal(0)
    total = (max(input_tokens, 0) * in_rate + max(output_tokens, 0) * out_rate) / MILLION
    return total + (p.per_request or Decimal(0))


def reserve_estimate(price: Price, input_tokens: int, max_output_tokens: int) -> Decimal:
    """An upper-bound cost to hold against the budget before a call: the prompt at the
    dearest input price and `max_output_tokens` at the dearest output price of the tier."""
    p = price.for_prompt(input_tokens)
    in_rates = [
        r for r in (p.input, p.audio_input, p.image_input, p.cache_write, p.cache_write_1h)
        if r is not None
    ]
    total = (
        max(input_tokens, 0) * max(in_rates, default=Decimal(0))
        + max(max_output_tokens, 0) * output_rate(price, input_tokens)
    ) / MILLION
    return total + (p.per_request or Decimal(0))


def output_rate(price: Price, input_tokens: int) -> Decimal:
    """The dearest output price (USD per 1M tokens) of the tier a prompt this long pays."""
    p = price.for_prompt(input_tokens)
    out_rates = [r for r in (p.output, p.audio_output, p.image_output) if r is not None]
    return max(out_rates, default=Decimal(0))


def affordable_output(price: Price, input_tokens: int, replies: int, remaining: Decimal) -> int | None:
    """The most output tokens per reply that `remaining` dollars pay for, after the prompt
    (and any per-call price): the inverse of `reserve_estimate`, rounded down so that
    `reserve_estimate(price, input_tokens, cap * replies) <= remaining`. None when output is
    free (nothing to cap); 0 when the prompt alone uses up `remaining`."""
    rate = output_rate(price, input_tokens)
    if rate <= 0:
        return None
    left = remaining - reserve_estimate(price, input_tokens, 0)
    if left <= 0:
        return 0
    return int(left * MILLION / rate) // max(replies, 1)
