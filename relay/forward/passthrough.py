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


# Never sent upstream: the caller's credentials and cookies, our own routing headers, anything
# that names the client's network (the provider sees the relay, not the user), and headers that
# pick which of the operator's accounts pays (OpenAI organization and project, Google's quota
# project): next to the operator's key they would bill, or probe, the operator's other accounts.
DROP_REQUEST = HOP_BY_HOP | frozenset(
    [
        "host", "cookie", "authorization", "x-goog-api-key", "x-api-key", "content-length",
        "accept-encoding",
        "origin", "referer", "forwarded", "x-real-ip", "true-client-ip", "x-client-ip",
        "client-ip", "x-cluster-client-ip", "fastly-client-ip", "via",
        "openai-organization", "openai-project", "x-goog-user-project",
    ]
)
DROP_REQUEST_PREFIXES = ("x-forwarded-", "x-original-", "cf-", "x-aipipe-")

# Never passed back: framing, cookies, and the operator's account identifiers.
DROP_RESPONSE = HOP_BY_HOP | frozenset(
    ["content-length", "content-encoding", "set-cookie", "openai-organization", "openai-project"]
)


def forwardable(name: str) -> bool:
    """Whether a (lower-case) request header goes upstream."""
    return name not in DROP_REQUEST and not name.startswith(DROP_REQUEST_PREFIXES)


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


class KeyMasker:
    """`mask_keys` over a stream of chunks, so a key split across two chunks is masked too: the
    end of a chunk that could begin a key is held back until the next chunk tells. Only such
    an end is held (an SSE event's closing blank line never is), so streaming stays live."""

    def __init__(self, keys: Any):
        self.keys = [(k.encode(), mask_secret(k).encode()) for k in keys if k]
        # A key can begin at the end of a chunk only if that chunk ends in one of these bytes
        # (SSE events end in a newline, which no key holds: the usual chunk is never scanned).
        self._inner = frozenset(b for key, _ in self.keys for b in key[:-1])
        self._starts = tuple({key[:3] for key, _ in self.keys})  # "sk-", "AIz": one look each
        self.held = b""

    def feed(self, chunk: bytes) -> bytes:
        data = self.held + chunk if self.held else chunk
        if any(start in data for start in self._starts):
            for key, masked in self.keys:
                if key in data:
                    data = data.replace(key, masked)
        keep = self._partial_key(data) if data and data[-1] in self._inner else 0
        self.held = data[len(data) - keep:] if keep else b""
        return data[: len(data) - keep] if keep else data

    def close(self) -> bytes:
        """What is held back when the stream ends (no key followed)."""
        rest, self.held = self.held, b""
        return rest

    def _partial_key(self, data: bytes) -> int:
        """Length of the longest end of `data` that is the start (not the whole) of a key."""
        longest = 0
        for key, _ in self.keys:
            i = data.find(key[:1], max(0, len(data) - len(key) + 1))
            while i != -1:
                if key.startswith(data[i:]):
                    longest = max(longest, len(data) - i)
                    break
                i = data.find(key[:1], i + 1)
        return longest


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


def error_event(name: str, message: str) -> bytes:
    """The relay's own SSE error event (the provider broke off): under the event `name` the
    provider's streams use for errors, in Anthropic's error shape (its SDKs skip unnamed
    events, and raise this one); else a bare `data:` event in OpenAI's shape."""
    if name:
        event = {"type": "error", "error": {"type": "api_error", "message": message}}
        return f"event: {name}\ndata: {json.dumps(event)}\n\n".encode()
    event = {"error": {"message": message, "type": "upstream_error"}}
    return f"data: {json.dumps(event)}\n\n".encode()


def is_json(resp: httpx.Response) -> bool:
    return "json" in resp.headers.get("content-type", "")
