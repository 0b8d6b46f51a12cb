"""Usage and cost where the provider told none: what the request implies (speech text, audio
length, images asked for) and the text of an answer."""

from __future__ import annotations

import json
from decimal import Decimal

from relay.costing.usage import Usage, usage_from_audio_upload, usage_from_json, usage_from_speech_request
from relay.forward.call import Call, choices
from relay.providers.sse import StreamUsageReader


def answer_chars(call: Call, content: bytes) -> int:
    """Characters of reply text in a JSON answer (not its keys and ids), for an estimate when
    the answer told no usage; read only then."""
    reader = StreamUsageReader(call.provider.name)
    reader.feed(content)
    reader.close()
    return reader.output_chars if reader.structured else len(content)


def usage_of(provider: str, content: bytes) -> Usage | None:
    try:
        data = json.loads(content, parse_float=Decimal)
    except (ValueError, UnicodeDecodeError):
        return None
    return usage_from_json(provider, data) if isinstance(data, dict) else None


def request_usage(call: Call, answer_size: int = 0) -> Usage | None:
    """Usage known from the request alone, where the answer reports none: speech is billed on
    its input text; Gemini embeddings report no usage, so their input is estimated; a
    transcription answered as plain text is estimated from the upload's playing time and the
    answer's size."""
    if call.upload_seconds is not None:
        return usage_from_audio_upload(call.upload_seconds, answer_size)
    if call.json is None:
        return None
    if call.endpoint.kind == "speech":
        return usage_from_speech_request(call.json)
    if call.endpoint.kind == "embeddings" and not call.provider.openai_style:
        return Usage(input_tokens=call.input_tokens, estimated=True)
    return None


# GPT Image output tokens per 1024x1024 image by quality (OpenAI's image generation guide);
# "auto" and unknown qualities count as high, so an estimate does not under-charge.
_IMAGE_TOKENS = {"low": 272, "medium": 1056, "high": 4160}


def requested_images(call: Call) -> Usage | None:
    """What an image request would have been billed, for when no answer came: the images it
    asked for (per-image models) and, for GPT Image, their output tokens by quality and size."""
    if call.endpoint.kind != "images" or call.json is None:
        return None
    n = choices(call)
    quality = call.json.get("quality")
    per = _IMAGE_TOKENS.get(quality if isinstance(quality, str) else "", _IMAGE_TOKENS["high"])
    if call.json.get("size") in ("1024x1536", "1536x1024"):
        per = per * 3 // 2
    return Usage(input_tokens=call.input_tokens, output_tokens=per * n,
                 image_output_tokens=per * n, images=n, estimated=True)
