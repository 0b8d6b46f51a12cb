"""`POST /similarity`: cosine similarity of docs to topics from one embeddings call."""

from __future__ import annotations

import json
import math

from starlette.requests import Request
from starlette.responses import JSONResponse

from relay.auth.access import require_user
from relay.errors import BadRequest, UpstreamError

MAX_TEXTS = 2048


async def similarity(request: Request) -> JSONResponse:
    email = require_user(request)
    try:
        body = json.loads(await request.body() or b"null")
    except (ValueError, UnicodeDecodeError) as e:
        raise BadRequest(
            "Body must be JSON: {docs, topics?, model?, precision?}", code="invalid_json"
        ) from e
    if not isinstance(body, dict):
        raise BadRequest(
            "Body must be JSON: {docs, topics?, model?, precision?}", code="invalid_json"
        )
    docs = _texts(body.get("docs"), "docs")
    topics = _texts(body.get("topics"), "topics") if body.get("topics") is not None else docs
    model = body.get("model", "text-embedding-3-small")
    precision = body.get("precision", 5)
    if not isinstance(model, str) or not model:
        raise BadRequest("model must be a string", code="invalid_model")
    if isinstance(precision, bool) or not isinstance(precision, int) or not 0 <= precision <= 15:
        raise BadRequest("precision must be a whole number from 0 to 15")
    unique = list(dict.fromkeys([*docs, *topics]))  # each text embedded once
    if len(unique) > MAX_TEXTS:
        raise BadRequest(f"At most {MAX_TEXTS} distinct texts per call")
    data = await request.app.state.relay.call_json(
        "openai",
        "/v1/embeddings",
        {"model": model, "input": unique},
        email,
        request.headers.get("origin", ""),
    )
    vectors = dict(zip(unique, (_unit(v) for v in _embeddings(data, len(unique))), strict=True))
    matrix = [
        [
            round(sum(a * b for a, b in zip(vectors[d], vectors[t], strict=True)), precision)
            for t in topics
        ]
        for d in docs
    ]
    usage = data.get("usage")
    tokens = usage.get("prompt_tokens") if isinstance(usage, dict) else None
    return JSONResponse(
        {
            "model": model,
            "similarity": matrix,
            "usage": {"prompt_tokens": tokens if isinstance(tokens, int) else 0},
        }
    )


def _texts(value: object, name: str) -> list[str]:
    if not isinstance(value, list) or not value or not all(isinstance(t, str) for t in value):
        raise BadRequest(f"{name} must be a non-empty list of strings")
    return value


def _embeddings(data: object, count: int) -> list[list[float]]:
    """The vectors of an embeddings answer in input order, checked: one per text, numbers of
    one length. Anything else is the provider's fault: 502, never a crash."""
    items = data.get("data") if isinstance(data, dict) else None
    if not isinstance(items, list):
        raise _malformed("it has no 'data' list")
    vectors: list[list[float] | None] = [None] * count
    for item in items:
        index = item.get("index") if isinstance(item, dict) else None
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < count:
            raise _malformed("an item has no valid 'index'")
        vector = item.get("embedding")
        if not isinstance(vector, list) or not all(
            isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)
            for x in vector
        ):
            raise _malformed("an 'embedding' is not a list of numbers")
        if vectors[index] is not None:
            raise _malformed("a text was embedded twice")
        vectors[index] = vector
    found = [v for v in vectors if v is not None]
    if len(found) < count:
        raise _malformed(f"{count - len(found)} of {count} texts were not embedded")
    if len({len(v) for v in found}) != 1 or not found[0]:
        raise _malformed("the vectors are not all of one length")
    return found


def _malformed(why: str) -> UpstreamError:
    return UpstreamError(f"The provider's embeddings answer is malformed: {why}",
                         code="malformed_answer")


def _unit(vector: list[float]) -> list[float]:
    norm = math.sqrt(sum(x * x for x in vector)) or 1.0
    return [x / norm for x in vector]
