"""What a provider says a call used, in one provider-neutral shape, and the readers that fill it."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any


@dataclass(frozen=True, slots=True)
class Usage:
    """What one call used, as the provider bills it. All counts are for the whole call.

    Token fields nest like this (every subset is billed at its own price *instead of* the
    plain one, never in addition to it):

    - `input_tokens`: every input token billed — prompt, cached, audio, image and tool-use
      prompt tokens (Gemini `promptTokenCount + toolUsePromptTokenCount`; OpenAI
      `prompt_tokens` / `input_tokens`).
      - `cached_input_tokens` ⊂ input: read from the provider's prompt cache (any modality).
      - `cache_write_tokens` ⊂ input: written to the cache on this call.
        - `cache_write_1h_tokens` ⊂ cache writes: kept for an hour (Anthropic bills them
          dearer than the default five-minute writes).
      - `audio_input_tokens` ⊂ input: audio tokens *not* read from the cache.
      - `image_input_tokens` ⊂ input: image tokens *not* read from the cache.
      - the rest are plain text input tokens.
    - `output_tokens`: every output token billed, reasoning included. OpenAI already counts
      reasoning inside `completion_tokens` / `output_tokens`; for Gemini this is
      `candidatesTokenCount + thoughtsTokenCount` (thinking is billed as output).
      - `reasoning_tokens` ⊂ output: for information only (billed at the output price).
      - `audio_output_tokens`, `image_output_tokens` ⊂ output: billed at those prices.

    Non-token units, for endpoints billed that way: `audio_seconds` (transcription, billed per
    minute), `input_characters` (tts-1 speech, billed per 1M characters), `images` (images
    returned, for per-image priced models). A unit is only billed when the model's price has
    that unit, so it may be filled alongside tokens.

    `reported_cost`: the USD cost the provider itself reported (OpenRouter `usage.cost`); when
    present it is the cost of the call.

    `estimated`: the token counts are the relay's estimate (from text lengths), not the
    provider's. Characters and images are always counted exactly; seconds too, unless
    `estimated_units` says they were estimated (an upload's length read from its size).
    """

    input_tokens: int = 0
    output_tokens: int = 0
    cached_input_tokens: int = 0
    cache_write_tokens: int = 0
    cache_write_1h_tokens: int = 0
    reasoning_tokens: int = 0
    audio_input_tokens: int = 0
    audio_output_tokens: int = 0
    image_input_tokens: int = 0
    image_output_tokens: int = 0
    audio_seconds: Decimal = Decimal(0)
    input_characters: int = 0
    images: int = 0
    reported_cost: Decimal | None = None
    estimated: bool = False
    estimated_units: bool = False


def usage_from_json(provider: str, body: Any) -> Usage | None:
    """Read the usage of one provider response (or one stream event) already parsed from JSON.

    Parse the JSON with `parse_float=Decimal` so a reported cost keeps its exact digits; a float
    is converted through its shortest repr. Returns None when the body carries no usage.

    Understands: OpenAI chat completions, Responses API (and its `response.*` stream events),
    embeddings, images (GPT Image tokens, or a DALL·E image count), transcription/translation
    (`usage` of type `tokens` or `duration`, or verbose_json `duration`); OpenRouter (the
    OpenAI shape plus `usage.cost`); Gemini `usageMetadata`; Anthropic Messages (`usage` of a
    message, of a `message_start` event's message, or of a `message_delta` event).
    """
    if not isinstance(body, dict):
        return None
    if provider == "anthropic":
        usage = body.get("usage")
        if not isinstance(usage, dict):
            usage = _dict(_dict(body.get("message")).get("usage"))  # message_start
        return _anthropic(usage) if usage else None
    meta = body.get("usageMetadata")
    if isinstance(meta, dict):
        return _gemini(meta)
    usage = body.get("usage")
    if not isinstance(usage, dict):
        response = body.get("response")  # Responses API stream events wrap the response
        if isinstance(response, dict) and isinstance(response.get("usage"), dict):
            usage = response["usage"]
    if isinstance(usage, dict):
        return _openai(provider, usage, body)
    return _unit_only(body)


def _openai(provider: str, u: dict[str, Any], body: dict[str, Any]) -> Usage | None:
    if u.get("type") == "duration":  # whisper-1 transcription
        return Usage(audio_seconds=_decimal(u.get("seconds")) or Decimal(0))
    if "prompt_tokens" in u:  # chat completions, embeddings, OpenRouter
        inp = _int(u.get("prompt_tokens"))
        out = _int(u.get("completion_tokens"))
        in_d = _dict(u.get("prompt_tokens_details"))
        out_d = _dict(u.get("completion_tokens_details"))
    elif "input_tokens" in u:  # Responses API, images, token-billed transcription
        inp = _int(u.get("input_tokens"))
        out = _int(u.get("output_tokens"))
        in_d = _dict(u.get("input_tokens_details")) or _dict(u.get("input_token_details"))
        out_d = _dict(u.get("output_tokens_details")) or _dict(u.get("output_token_details"))
    else:
        return _unit_only(body)
    # `input_tokens_cached` is an older flat spelling seen in the reasoning guide's example.
    cached = _int(in_d.get("cached_tokens")) or _int(u.get("input_tokens_cached"))
    cached_d = _dict(in_d.get("cached_tokens_details"))
    audio_in = _int(in_d.get("audio_tokens")) - _int(cached_d.get("audio_tokens"))
    image_in = _int(in_d.get("image_tokens")) - _int(cached_d.get("image_tokens"))
    audio_out = _int(out_d.get("audio_tokens"))
    image_out = _int(out_d.get("image_tokens"))
    images = _image_count(body)
    if images and not image_out and not out_d.get("text_tokens"):
        image_out = out  # GPT Image: every output token is an image token
    if body.get("type") == "speech.audio.done":
        audio_out = out  # streamed speech (stream_format "sse"): the output is all audio
    return Usage(
        input_tokens=inp,
        output_tokens=out,
        cached_input_tokens=cached,
        cache_write_tokens=_int(in_d.get("cache_write_tokens")),
        reasoning_tokens=_int(out_d.get("reasoning_tokens")),
        audio_input_tokens=max(audio_in, 0),
        audio_output_tokens=audio_out,
        image_input_tokens=max(image_in, 0),
        image_output_tokens=image_out,
        images=images,
        reported_cost=_reported_cost(u) if provider.lower() == "openrouter" else None,
    )


def _anthropic(u: dict[str, Any]) -> Usage:
    """Anthropic Messages usage (https://docs.claude.com/en/api/messages): `input_tokens`
    counts only the input after the last cache breakpoint; cache reads and writes come on top."""
    read = _int(u.get("cache_read_input_tokens"))
    write = _int(u.get("cache_creation_input_tokens"))
    split = _dict(u.get("cache_creation"))
    write_1h = min(_int(split.get("ephemeral_1h_input_tokens")), write)
    return Usage(
        input_tokens=_int(u.get("input_tokens")) + read + write,
        output_tokens=_int(u.get("output_tokens")),
        cached_input_tokens=read,
        cache_write_tokens=write,
        cache_write_1h_tokens=write_1h,
    )


def _reported_cost(u: dict[str, Any]) -> Decimal | None:
    """OpenRouter `usage.cost`. With BYOK (bring your own key) `cost` is only OpenRouter's fee
    and `cost_details.upstream_inference_cost` is what the provider bills the operator's own
    key, so both are added; that field "only applies to BYOK requests", so it counts unless
    `is_byok` says false (https://openrouter.ai/docs/use-cases/usage-accounting)."""
    cost = _decimal(u.get("cost"))
    if cost is not None and u.get("is_byok") is not False:
        upstream = _decimal(_dict(u.get("cost_details")).get("upstream_inference_cost"))
        if upstream:
            cost += upstream
    return cost


def _unit_only(body: dict[str, Any]) -> Usage | None:
    """Responses billed without token usage: DALL·E images, verbose_json transcriptions."""
    images = _image_count(body)
    if images:
        return Usage(images=images)
    seconds = _decimal(body.get("duration"))
    if seconds is not None and "text" in body:
        return Usage(audio_seconds=seconds)
    return None


def _gemini(m: dict[str, Any]) -> Usage:
    """Gemini usageMetadata (https://ai.google.dev/api/generate-content#UsageMetadata)."""
    thoughts = _int(m.get("thoughtsTokenCount"))
    prompt_audio = _modality(m.get("promptTokensDetails"), "AUDIO") + _modality(
        m.get("toolUsePromptTokensDetails"), "AUDIO"
    )
    cached_audio = _modality(m.get("cacheTokensDetails"), "AUDIO")
    return Usage(
        input_tokens=_int(m.get("promptTokenCount")) + _int(m.get("toolUsePromptTokenCount")),
        output_tokens=_int(m.get("candidatesTokenCount")) + thoughts,
        cached_input_tokens=_int(m.get("cachedContentTokenCount")),
        reasoning_tokens=thoughts,
        audio_input_tokens=max(prompt_audio - cached_audio, 0),
        audio_output_tokens=_modality(m.get("candidatesTokensDetails"), "AUDIO"),
        image_output_tokens=_modality(m.get("candidatesTokensDetails"), "IMAGE"),
    )


def _modality(details: Any, modality: str) -> int:
    if not isinstance(details, list):
        return 0
    return sum(
        _int(d.get("tokenCount"))
        for d in details
        if isinstance(d, dict) and d.get("modality") == modality
    )


def _image_count(body: dict[str, Any]) -> int:
    data = body.get("data")
    if not isinstance(data, list):
        return 0
    return sum(1 for d in data if isinstance(d, dict) and ("b64_json" in d or "url" in d))


# gpt-4o-mini-tts: OpenAI quotes ~$0.015 per minute at $12 per 1M audio tokens (~1,250 tokens a
# minute), and speech runs ~900 characters a minute: ~1.4 audio tokens per input character.
_AUDIO_TOKENS_PER_CHAR_X10 = 14


def usage_from_speech_request(body: Any) -> Usage:
    """Usage of an `/v1/audio/speech` call, read from its request (the answer is audio bytes).

    `input_characters` is exact (tts-1 and tts-1-hd bill it). The token counts for token-billed
    speech models (gpt-4o-mini-tts) are estimates: text tokens ≈ characters / 4 (input and
    `instructions`), audio output ≈ 1.4 tokens per input character; so `estimated` is set.
    A streamed speech answer (`stream_format: "sse"`) reports exact usage in its
    `speech.audio.done` event instead."""
    text = body.get("input") if isinstance(body, dict) else None
    chars = len(text) if isinstance(text, str) else 0
    instructions = body.get("instructions") if isinstance(body, dict) else None
    extra = len(instructions) if isinstance(instructions, str) else 0
    audio = -(-chars * _AUDIO_TOKENS_PER_CHAR_X10 // 10)
    return Usage(
        input_tokens=-(-(chars + extra) // 4),
        output_tokens=audio,
        audio_output_tokens=audio,
        input_characters=chars,
        estimated=True,
    )


# gpt-4o-transcribe: OpenAI quotes ~$0.006 per minute at $6 per 1M audio tokens: ~1,000 audio
# tokens a minute of input.
_AUDIO_TOKENS_PER_MINUTE = 1000
_ASSUMED_BYTES_PER_SECOND = 16_000  # 128 kbit/s, the common rate of compressed uploads
# MPEG-1 Layer III bit rates (kbit/s) by the header's 4-bit index; 0 and 15 are not rates.
_MP3_KBPS = (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 0)


def audio_seconds(data: bytes) -> Decimal:
    """The playing time of an uploaded audio file, read from its header where that is cheap.

    WAV: exact (data chunk size / byte rate). MP3 (MPEG-1 Layer III, after any ID3v2 tag): size
    / the first frame's bit rate, exact for constant bit rate. Anything else (m4a, webm, ogg,
    flac): size at an assumed 128 kbit/s — low-bit-rate voice recordings (opus at 32 kbit/s)
    are under-estimated up to 4x, FLAC over-estimated ~5x. Rounded up to a tenth of a second."""
    seconds = _wav_seconds(data) or _mp3_seconds(data)
    if seconds is None:
        seconds = Decimal(len(data)) / _ASSUMED_BYTES_PER_SECOND
    return -(-seconds * 10 // 1) / 10 if seconds > 0 else Decimal(0)


def _wav_seconds(data: bytes) -> Decimal | None:
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        return None
    at, byte_rate = 12, 0
    while at + 8 <= len(data):
        kind, size = data[at : at + 4], int.from_bytes(data[at + 4 : at + 8], "little")
        if kind == b"fmt " and size >= 12:
            byte_rate = int.from_bytes(data[at + 16 : at + 20], "little")
        elif kind == b"data":
            if not byte_rate:
                return None
            present = min(size, len(data) - at - 8)  # streams write a placeholder size
            return Decimal(present) / byte_rate
        at += 8 + size + (size & 1)
    return None


def _mp3_seconds(data: bytes) -> Decimal | None:
    at = 0
    if data[:3] == b"ID3" and len(data) >= 10:  # skip the tag: a 28-bit "syncsafe" size
        at = 10 + sum((data[6 + i] & 0x7F) << (7 * (3 - i)) for i in range(4))
    header = data[at : at + 4]
    # Frame sync (11 bits set), MPEG-1 (version bits 11), Layer III (layer bits 01).
    if len(header) < 4 or header[0] != 0xFF or header[1] & 0xFE != 0xFA:
        return None
    kbps = _MP3_KBPS[header[2] >> 4]
    return Decimal(len(data) - at) * 8 / (kbps * 1000) if kbps else None


def usage_from_audio_upload(seconds: Decimal, answer_chars: int) -> Usage:
    """Estimated usage of a transcription or translation whose answer reported none (e.g.
    `response_format=text`), from the upload's playing time (`audio_seconds`; whisper-1 bills
    it per minute): audio input tokens at ~1,000 a minute and the answer's text at ~4
    characters a token (gpt-4o-transcribe bills those). Marked `estimated`."""
    tokens = int(-(-seconds * _AUDIO_TOKENS_PER_MINUTE // 60))
    return Usage(
        input_tokens=tokens,
        audio_input_tokens=tokens,
        output_tokens=-(-answer_chars // 4),
        audio_seconds=seconds,
        estimated=True,
        estimated_units=True,
    )


# Keys whose string values are prompt text, in OpenAI and Gemini request bodies.
_TEXT_KEYS = frozenset(
    {"content", "text", "input", "prompt", "instructions", "system", "arguments", "parts",
     "messages", "contents", "systemInstruction", "system_instruction", "requests"}
)


def request_text_chars(body: Any) -> int:
    """Characters of prompt text in a request body (chat messages, Responses `input`,
    embeddings `input`, Gemini `contents` / `requests`), for estimates when no usage comes
    back. Base64 media, URLs and settings are not counted."""
    if isinstance(body, str):
        return len(body)
    if isinstance(body, list):
        return sum(request_text_chars(item) for item in body)
    if isinstance(body, dict):
        return sum(request_text_chars(v) for k, v in body.items() if k in _TEXT_KEYS)
    return 0


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _int(value: Any) -> int:
    """A token count; tolerates null, floats and Decimals (some servers send 12.0)."""
    if isinstance(value, bool) or value is None:
        return 0
    if isinstance(value, int):
        return max(value, 0)
    if isinstance(value, float | Decimal):
        try:
            return max(int(value), 0)
        except (ValueError, OverflowError, InvalidOperation):
            return 0
    return 0


def _decimal(value: Any) -> Decimal | None:
    """Money or seconds from JSON: exact from Decimal/int/str, floats via their shortest repr."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        if isinstance(value, Decimal | int):
            amount = Decimal(value)
        elif isinstance(value, float | str):
            amount = Decimal(repr(value) if isinstance(value, float) else value.strip())
        else:
            return None
    except InvalidOperation:
        return None
    return amount if amount.is_finite() and amount >= 0 else None
