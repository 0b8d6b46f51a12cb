"""The edge: the one middleware every HTTP request passes, doing in a single layer what would
otherwise be five (each a closure per request on the hot path):

- CORS: preflights answered before any route; `Access-Control-Allow-Origin: *` on every answer,
  errors included (headers added at response start, so streams stay unbuffered);
- a body limit (413) for every route, even the unauthenticated POST /token;
- the client's address: from `X-Forwarded-For`/`Forwarded` only when a trusted proxy sent them
  (relay.forwarded), set in the scope before anything reads it;
- one JSON access-log line per request, joined by the proxy's fields (see relay.logs), and the
  same fields counted for `/metrics` (relay.metrics);
- a count of requests in flight, so shutdown can wait for their `finally` blocks;
- a bug becomes a logged 500 in the one JSON envelope.

Provider calls (`/openai/…`, `/openrouter/…`, `/geminiv1beta/…`) go from here straight to the
relay's handler: Starlette's router would otherwise try every page route first.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from relay.errors import PayloadTooLarge, RelayError, error_response
from relay.forwarded import TrustedProxies
from relay.logs import begin_request, end_request
from relay.metrics import Meter
from relay.providers.registry import PROVIDERS

log = logging.getLogger("aipipe")

EXPOSED = (
    "x-aipipe-cost, x-aipipe-remaining, x-aipipe-cost-source, x-should-retry, retry-after, "
    "x-request-id"
)
_ALLOW_ORIGIN = (b"access-control-allow-origin", b"*")
_EXPOSE = (b"access-control-expose-headers", EXPOSED.encode())
_METHODS = b"GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS"
# Paths no other site may call from a browser: no CORS grant, preflight or answer.
NO_CORS = frozenset({"/dev-login"})


class InFlight:
    """How many HTTP requests are in progress (their middleware included)."""

    def __init__(self) -> None:
        self.count = 0

    async def idle(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while self.count and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        return self.count == 0


class Edge:
    def __init__(
        self,
        app: ASGIApp,
        *,
        starlette: Starlette,
        max_bytes: int,
        inflight: InFlight,
        meter: Meter,
        trusted: TrustedProxies,
    ):
        self.app = app
        self.starlette = starlette
        self.max_bytes = max_bytes
        self.inflight = inflight
        self.meter = meter
        self.trusted = trusted if trusted else None  # None: no proxy is trusted, nothing to read

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        cors = scope["path"] not in NO_CORS
        if scope["method"] == "OPTIONS":
            await _preflight(scope, send, cors)
            return
        if self.trusted is not None:
            self.trusted.apply(scope)
        self.inflight.count += 1
        entry = begin_request()
        started = time.perf_counter()
        status = 0
        max_bytes = self.max_bytes
        seen = 0

        async def bounded() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > max_bytes:
                    raise _too_large(max_bytes)
            return message

        async def cors_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [
                    (k, v) for k, v in message.get("headers", []) if not k.startswith(b"access-control-")
                ]
                if cors:
                    headers += (_ALLOW_ORIGIN, _EXPOSE)
                message["headers"] = headers
            await send(message)

        try:
            declared = _header(scope, b"content-length")
            if declared.isdigit() and int(declared) > max_bytes:
                await _too_large(max_bytes).response()(scope, receive, cors_send)
                return
            provider = _provider_segment(scope["path"])
            if provider is None:
                await self.app(scope, bounded, cors_send)
            else:
                await self._provider(scope, bounded, cors_send, provider)
        except Exception:
            # The last line of defence for bugs: never swallowed — logged with its traceback,
            # answered as a 500 in the one envelope, or re-raised once the response has begun.
            log.exception("unhandled error on %s %s", scope.get("method"), scope.get("path"))
            if status:
                raise
            response = error_response(500, "Internal error in the relay", "server_error", "internal_error")
            await response(scope, receive, cors_send)
        finally:
            self.inflight.count -= 1
            end_request(entry, scope, status or 500, started)
            self.meter.request(entry[0], status or 500)

    async def _provider(self, scope: Scope, receive: Receive, send: Send, provider: str) -> None:
        """The route `/{provider}/{path:path}` without the router, with the relay's error
        handling (RelayError → its response, as the app's exception handler would)."""
        path = scope["path"]
        rest = path[len(provider) + 2 :]  # after "/<provider>/"
        scope["app"] = self.starlette
        scope["path_params"] = {"provider": provider, "path": rest}
        request = Request(scope, receive, send)
        try:
            response = await self.starlette.state.relay(request)
        except RelayError as e:
            response = e.response()
        await response(scope, receive, send)


def _provider_segment(path: str) -> str | None:
    """The provider named by the path's first segment, when it is one."""
    end = path.find("/", 1)
    first = path[1:] if end < 0 else path[1:end]
    return first if first in PROVIDERS else None


def _header(scope: Scope, name: bytes) -> bytes:
    for key, value in scope["headers"]:
        if key == name:
            return value
    return b""


def _too_large(size: int) -> PayloadTooLarge:
    shown = f"{size / 2**20:g} MB" if size >= 2**20 else f"{size} bytes"
    return PayloadTooLarge(f"Request body is larger than {shown}")


async def _preflight(scope: Scope, send: Send, cors: bool) -> None:
    headers: list[tuple[bytes, Any]] = [
        _ALLOW_ORIGIN,
        (b"access-control-allow-methods", _METHODS),
        (b"access-control-allow-headers", _header(scope, b"access-control-request-headers") or b"*"),
        (b"access-control-max-age", b"86400"),
        (b"content-length", b"0"),
    ] if cors else [(b"content-length", b"0")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": b""})
