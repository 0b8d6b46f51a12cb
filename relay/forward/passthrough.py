"""What passes between client and provider unchanged, and what never does: header filters,
key masking, the raw pass-through stream, and the relay's one addition to a stream (its cost)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import anyio
import httpx
from starlette.responses import StreamingResponse
from starlette.types import Send

from relay.costing.budget import budget_headers
from relay.errors import mask_secret

HOP_BY_HOP = frozenset(
    [
        "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection",
        "te", "trailer", "trailers", "transfer-encoding", "upgrade",
    ]
)


# Never sent upstream: the caller's credentials and cookies, our own routing headers, and
# anything that names the client's network (the provider sees the relay, not the user).
DROP_REQUEST = HOP_BY_HOP | frozenset(
    [
        "host", "cookie", "authorization", "x-goog-api-key", "content-length", "accept-encoding",
        "origin", "referer", "forwarded", "x-real-ip",
    ]
)


DROP_RESPONSE = HOP_BY_HOP | frozenset(["content-length", "content-encoding", "set-cookie"])


class ClosingStream(StreamingResponse):
    """A StreamingResponse that closes its iterator however sending ends. When the client goes
    away, Starlette stops at a failed `send` and leaves the generator suspended; its `finally`
    (which records the cost and releases the reservation) would then wait for the garbage
    collector. Closing it here runs that `finally` at once."""

    async def stream_response(self, send: Send) -> None:
        try:
            await super().stream_response(send)
        finally:
            aclose = getattr(self.body_iterator, "aclose", None)
            if aclose is not None:
                with anyio.CancelScope(shield=True):
                    await aclose()


def response_headers(upstream: httpx.Headers) -> dict[str, str]:
    return {
        k: v
        for k, v in upstream.items()
        if k not in DROP_RESPONSE and not k.startswith("access-control-")
    }


def mask_keys(content: bytes, keys: Any) -> bytes:
    """Providers sometimes quote the key they were given; never let it reach the client."""
    for key in keys:
        if key and key.encode() in content:
            content = content.replace(key.encode(), mask_secret(key).encode())
    return content


async def passthrough(resp: httpx.Response) -> AsyncIterator[bytes]:
    try:
        async for chunk in resp.aiter_raw():
            yield chunk
    finally:
        with anyio.CancelScope(shield=True):
            await resp.aclose()


def cost_comment(settled: tuple[Decimal, str], remaining: Decimal, tail: bytes) -> bytes:
    """The SSE comment that ends a streamed OpenAI-style answer with its recorded cost, for
    the playground. SSE parsers (browsers, the OpenAI SDKs) skip `:` lines, so clients that do
    not look for it see the provider's stream unchanged."""
    cost, source = settled
    values = budget_headers(remaining, cost)
    info = {"cost": values["x-aipipe-cost"], "cost_source": source,
            "remaining": values["x-aipipe-remaining"]}
    # A comment must start a line; after an unterminated last event, end that event first.
    lead = b"" if tail.endswith(b"\n\n") else b"\n" if tail.endswith(b"\n") else b"\n\n"
    return lead + b": aipipe " + json.dumps(info).encode() + b"\n\n"


def is_json(resp: httpx.Response) -> bool:
    return "json" in resp.headers.get("content-type", "")
