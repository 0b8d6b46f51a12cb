"""CORS on every answer (errors included), and preflights answered before any route runs.

A pure ASGI middleware: it only adds headers to the response start, so streams stay unbuffered.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

EXPOSED = "x-aipipe-cost, x-aipipe-remaining, x-aipipe-cost-source, x-should-retry, retry-after, x-request-id"
_ALLOW_ORIGIN = (b"access-control-allow-origin", b"*")
_EXPOSE = (b"access-control-expose-headers", EXPOSED.encode())
_METHODS = b"GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS"


class CORSMiddleware:
    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["method"] == "OPTIONS":
            await _preflight(scope, send)
            return

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [
                    (k, v)
                    for k, v in message.get("headers", [])
                    if not k.startswith(b"access-control-")
                ]
                headers += [_ALLOW_ORIGIN, _EXPOSE]
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_cors)


async def _preflight(scope: Scope, send: Send) -> None:
    requested = b""
    for key, value in scope["headers"]:
        if key == b"access-control-request-headers":
            requested = value
    headers = [
        _ALLOW_ORIGIN,
        (b"access-control-allow-methods", _METHODS),
        (b"access-control-allow-headers", requested or b"*"),
        (b"access-control-max-age", b"86400"),
        (b"content-length", b"0"),
    ]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": b""})
