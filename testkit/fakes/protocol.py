"""What the three fake providers share: constants, token counting, errors, and `Call`, one request
with the behaviours it asked for and the helpers that answer it (JSON or a breakable stream)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from email import policy
from email.parser import BytesParser
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

DEFAULT_KEYS = {
    "openai": "sk-test-openai", "openrouter": "sk-or-test", "gemini": "AIza-test-gemini",
    "anthropic": "sk-ant-test-anthropic"}
BEHAVIOURS = ("slow", "error500", "error429", "break", "silent", "nousage", "leakkey", "cached",
              "linger", "streamerror", "fill", "leaktext", "leakstream")
# Under `fill`, a reply that names no maximum runs to this many tokens (mostly reasoning).
FILL_MAX_OUTPUT = 100_000
WORDS = ("Hello", "from", "the", "fake", "upstream", "streaming", "reply", "number")
# OpenRouter prices per token, as strings like its /models list; unlisted models use DEFAULT_PRICE.
OPENROUTER_PRICES = {
    "openai/gpt-4o-mini": ("0.00000015", "0.0000006"),
    "openai/gpt-4.1-nano": ("0.0000001", "0.0000004"),
    "anthropic/claude-3.5-haiku": ("0.0000008", "0.000004"),
    "meta-llama/llama-3.3-70b-instruct:free": ("0", "0"),
    "test/nocost-model": ("0.000001", "0.000002"),
}
DEFAULT_PRICE = ("0.000001", "0.000002")
OPENAI_MODELS = ("gpt-4o-mini", "gpt-4.1-nano", "o4-mini", "text-embedding-3-small", "whisper-1")
GEMINI_MODELS = (
    "gemini-2.5-flash", "gemini-2.5-flash-lite", "gemini-2.0-flash", "text-embedding-004")
ANTHROPIC_MODELS = (
    "claude-sonnet-4-5-20250929", "claude-haiku-4-5-20251001", "claude-opus-4-1-20250805")


class FakeStreamBroken(RuntimeError):
    """Raised inside a response body on purpose so the server drops the connection."""


def words(value: Any) -> int:
    """Count words in message-like structures (strings, lists, content/text/parts fields)."""
    if isinstance(value, str):
        return len(value.split())
    if isinstance(value, list):
        return sum(words(v) for v in value)
    if isinstance(value, dict):
        return sum(words(value[k]) for k in ("content", "text", "parts", "input") if k in value)
    return 0


def output_cap(data: dict[str, Any], fields: tuple[str, ...], sections: tuple[str, ...] = ()
               ) -> int | None:
    """The reply maximum a request names, as a provider reads it: any of `fields` (in the body,
    or in whichever of `sections` is present); the largest counts."""
    holder: Any = data
    for name in sections:
        if isinstance(data.get(name), dict):
            holder = data[name]
            break
    else:
        if sections:
            return None
    values = [holder.get(f) for f in fields]
    present = [v for v in values if isinstance(v, int) and not isinstance(v, bool)]
    return max(present) if present else None


def reply_chunks(n: int) -> list[str]:
    """The deterministic reply, one word (= one token) per chunk."""
    return [WORDS[i % len(WORDS)] + (" " if i < n - 1 else "") for i in range(n)]


def openrouter_cost(model: str, prompt: int, completion: int) -> Decimal:
    """Exact cost from the fake's own /models prices."""
    p, c = OPENROUTER_PRICES.get(model, DEFAULT_PRICE)
    return Decimal(p) * prompt + Decimal(c) * completion


def embed(text: str, dims: int = 8) -> list[float]:
    """A unit vector derived from the text's hash: same text, same vector."""
    digest = hashlib.sha256(text.encode()).digest()
    raw = [(digest[i % 32] - 127.5) / 127.5 for i in range(dims)]
    norm = math.sqrt(sum(x * x for x in raw)) or 1.0
    return [x / norm for x in raw]


def sse(obj: Any, event: str | None = None, sep: str = "\n\n") -> bytes:
    data = obj if isinstance(obj, str) else json.dumps(obj)
    return ((f"event: {event}\n" if event else "") + f"data: {data}{sep}").encode()


def key_of(request: Request, provider: str) -> str:
    if provider == "gemini":
        return request.headers.get("x-goog-api-key") or request.query_params.get("key", "")
    if provider == "anthropic" and request.headers.get("x-api-key"):
        return request.headers["x-api-key"]  # older SDKs; newer ones send a Bearer key
    auth = request.headers.get("authorization", "")
    return auth[7:].strip() if auth.lower().startswith("bearer ") else ""


def provider_error(
    provider: str, status: int, message: str, kind: str = "", code: Any = None
) -> Response:
    """An error in the provider's own JSON shape."""
    if provider == "openai":
        body: dict[str, Any] = {"message": message, "type": kind or "invalid_request_error",
                                "param": None, "code": code}
    elif provider == "openrouter":
        body = {"message": message, "code": status}
    elif provider == "anthropic":
        kinds = {401: "authentication_error", 404: "not_found_error", 429: "rate_limit_error",
                 500: "api_error", 529: "overloaded_error"}
        return JSONResponse({"type": "error", "error": {
            "type": kinds.get(status, "invalid_request_error"), "message": message}},
            status_code=status)
    else:
        body = {"code": status, "message": message, "status": kind or "INVALID_ARGUMENT"}
    return JSONResponse({"error": body}, status_code=status)


def auth_error(provider: str, key: str) -> Response:
    """401 as each provider words it; OpenAI echoes a fragment of the key it was given."""
    if provider == "openai":
        if not key:
            return provider_error(
                "openai", 401, "You didn't provide an API key. You need to provide your API key in "
                "an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).")
        masked = f"{key[:5]}****{key[-4:]}"
        return provider_error(
            "openai", 401, f"Incorrect API key provided: {masked}. You can find your API key at "
            "https://platform.openai.com/account/api-keys.", code="invalid_api_key")
    if provider == "openrouter":
        message = "User not found." if key else "No auth credentials found"
        return provider_error("openrouter", 401, message)
    if provider == "anthropic":
        return provider_error("anthropic", 401, "invalid x-api-key")
    return provider_error(
        "gemini", 401, "API key not valid. Please pass a valid API key.", "UNAUTHENTICATED")


def parse_multipart(body: bytes, content_type: str) -> dict[str, Any]:
    msg = BytesParser(policy=policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body)
    out: dict[str, Any] = {}
    for part in msg.iter_parts():
        payload = part.get_payload(decode=True) or b""
        name = part.get_param("name", header="content-disposition")
        out[str(name)] = payload if part.get_filename() else payload.decode()
    return out


@dataclass
class Call:
    """One request to the fake: what was asked and how to misbehave."""

    app: Starlette
    provider: str
    request: Request
    sub: str  # path under the provider prefix, e.g. "v1/chat/completions"
    data: dict[str, Any]
    model: str
    behaviours: set[str] = field(default_factory=set)
    chunks: int = 5
    delay: float = 0.1
    pace: float = 0.0  # seconds between stream pieces without `slow` (the app's `pace`)

    def limit_output(self, cap: int | None, reasoning: bool) -> int:
        """Shape the reply as a provider does under the request's `cap`: `chunks` visible tokens
        (plus twice as many reasoning tokens for a reasoning model), never more than `cap` in
        all; under `fill` the reply runs to the cap (FILL_MAX_OUTPUT when none), mostly as
        reasoning. Sets `chunks` to the visible tokens; returns the reasoning tokens."""
        shown = self.chunks
        thinking = 2 * shown if reasoning else 0
        if "fill" in self.behaviours:
            total = cap or FILL_MAX_OUTPUT
            shown = min(shown, total)
            thinking = total - shown
        elif cap is not None:
            shown = min(shown, cap)
            thinking = min(thinking, cap - shown)
        self.chunks = shown
        return thinking

    def bill(self, usage: dict[str, Any] | None, stream: bool, cost: Decimal | None = None) -> None:
        self.app.state.billed.append({"provider": self.provider, "model": self.model,
                                      "path": self.sub, "stream": stream,
                                      "usage": usage or {}, "cost": cost})

    def json(self, obj: Any, usage: dict[str, Any] | None, cost: Decimal | None = None) -> Response:
        body = json.dumps(obj).encode()
        if "break" in self.behaviours:  # half a JSON body, then the connection drops
            return self.stream([body[: len(body) // 2]], 1, "application/json", lambda: None)
        self.bill(usage, False, cost)
        return Response(body, media_type="application/json")

    def stream(self, pieces: list[bytes], cut_after: int | None, media_type: str,
               on_done: Callable[[], None]) -> Response:
        cut = cut_after if "break" in self.behaviours else None

        gap = self.delay if "slow" in self.behaviours else self.pace

        async def body() -> AsyncIterator[bytes]:
            for i, piece in enumerate(pieces):
                if i and gap:
                    await asyncio.sleep(gap)
                yield piece
                if cut is not None and i + 1 >= cut:
                    raise FakeStreamBroken(f"fake upstream cut the stream after {cut} pieces")
            on_done()
            if "linger" in self.behaviours:  # the answer is whole; the connection closes late
                await asyncio.sleep(self.delay)

        return StreamingResponse(body(), media_type=media_type)


