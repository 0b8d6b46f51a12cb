"""Reading parsed stream values: the text a reply carried and the error an event reported.

Helpers of `relay.providers.sse.StreamUsageReader` for values it has already parsed as JSON
(Gemini array elements, whole JSON bodies, error events)."""

from __future__ import annotations

import json
from typing import Any


def error_of(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        return {"message": str(value)[:500]}
    if isinstance(value.get("error"), dict):
        return value["error"]  # OpenAI / OpenRouter / Gemini {"error": {...}}
    response = value.get("response")
    if isinstance(response, dict) and isinstance(response.get("error"), dict):
        return response["error"]  # Responses API `response.failed`
    return value  # Responses API `error` event: the event is the error


def text_len(raw: bytes) -> int:
    """Characters of a JSON string literal's body, decoding escapes only when present."""
    if raw.find(b"\\") >= 0:
        try:
            return len(json.loads(b'"' + raw + b'"'))
        except ValueError:
            return len(raw)
    return len(raw) if raw.isascii() else len(raw.decode("utf-8", "replace"))


def gemini_text(value: dict[str, Any]) -> int:
    """Characters of `candidates[].content.parts[].text` in one Gemini response element."""
    total = 0
    for candidate in value.get("candidates") or ():
        content = candidate.get("content") if isinstance(candidate, dict) else None
        for part in (content.get("parts") or ()) if isinstance(content, dict) else ():
            text = part.get("text") if isinstance(part, dict) else None
            if isinstance(text, str):
                total += len(text)
    return total


def walk_text(value: Any, keys: frozenset[str]) -> int:
    if isinstance(value, dict):
        total = 0
        for k, v in value.items():
            if isinstance(v, str):
                if k in keys:
                    total += len(v)
            elif k != "usageMetadata" and k != "usage":
                total += walk_text(v, keys)
        return total
    if isinstance(value, list):
        return sum(walk_text(v, keys) for v in value)
    return 0
