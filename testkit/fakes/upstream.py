"""A fake upstream speaking OpenAI, OpenRouter, Gemini and Anthropic under `/openai`, `/openrouter`,
`/gemini` and `/anthropic`.

Behaviours are chosen by the `x-fake` header (comma/space separated) or by the word appearing in
the model name, so SDK clients and browsers can both trigger them:
`slow` (chunks `x-fake-delay` ms apart, default 100), `error500`, `error429`, `break` (the body is
cut mid-way and the connection dropped), `silent` (never answers), `nousage` (no usage reported),
`leakkey` (a 400 whose body holds the full key received), `leaktext` (the same as text/plain),
`leakstream` (an SSE stream whose error event quotes the key, split across two chunks),
`cached` (half the prompt is cached), `fill` (the reply runs to its maximum: the cap the request
names, else 100,000 tokens, mostly reasoning), `linger` (a stream's connection stays open
`x-fake-delay` ms after its last piece), `streamerror` (Anthropic: an `error` event mid-stream).
Replies never run past the cap a request names.
Streams carry `x-fake-chunks` content chunks (default 5); the reply has one token per chunk and the
prompt one token per word (min 1). `create_fake_upstream(pace=s)` spaces every stream's pieces `s`
seconds apart, as a real model's tokens arrive (clients configured as users configure them send
no `x-fake` header). Gemini paths may carry the API version (`/gemini/v1beta/models/...`), as
Google's SDKs send them. `app.state.received` records every request (`header_list`: every
header line, repeats kept), `app.state.billed` every completed call (usage exactly as told to
the client).
"""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .anthropic_api import anthropic_dispatch
from .gemini_api import gemini_dispatch
from .openai_api import OPENAI_ROUTES, OPENROUTER_ROUTES
from .protocol import (
    BEHAVIOURS,
    DEFAULT_KEYS,
    Call,
    FakeStreamBroken,
    auth_error,
    key_of,
    parse_multipart,
    provider_error,
)

__all__ = ["BEHAVIOURS", "DEFAULT_KEYS", "FakeStreamBroken", "create_fake_upstream", "reset"]


async def _handle(request: Request) -> Response:
    app: Starlette = request.app
    provider, sub = request.path_params["provider"], request.path_params["sub"]
    if provider not in app.state.keys:
        return JSONResponse({"error": {"message": f"no fake provider {provider!r}"}}, 404)
    body = await request.body()
    app.state.received.append({
        "provider": provider, "method": request.method, "path": request.url.path,
        "query": request.url.query, "headers": dict(request.headers),
        "header_list": request.headers.items(), "body": body})
    key = key_of(request, provider)
    public = provider == "openrouter" and sub == "v1/models"  # as on the real service
    if key != app.state.keys[provider] and not public:
        return auth_error(provider, key)
    ctype = request.headers.get("content-type", "")
    data: dict[str, Any] = {}
    try:
        if ctype.startswith("multipart/"):
            data = parse_multipart(body, ctype)
        elif body:
            data = json.loads(body)
    except ValueError as exc:
        return provider_error(provider, 400, f"We could not parse the JSON body: {exc}")
    model = str(data.get("model", ""))
    if provider == "gemini":
        sub = re.sub(r"^v\d+(?:alpha|beta)?\d*/", "", sub)  # the API version, when sent
        if m := re.match(r"models/([^:/]+)", sub):
            model = m.group(1)
    asked = set(re.split(r"[,\s]+", request.headers.get("x-fake", "").lower()))
    behaviours = {b for b in BEHAVIOURS if b in asked or b in model.lower()}
    call = Call(app, provider, request, sub, data, model, behaviours,
                int(request.headers.get("x-fake-chunks", 5)),
                int(request.headers.get("x-fake-delay", 100)) / 1000, app.state.pace)
    if "silent" in behaviours:
        await asyncio.sleep(3600)
    if "error500" in behaviours:
        return provider_error(
            provider, 500, "The server had an error while processing your request.",
            "server_error" if provider == "openai" else "INTERNAL")
    if "error429" in behaviours:
        return provider_error(
            provider, 429, "Rate limit reached for requests",
            "requests" if provider == "openai" else "RESOURCE_EXHAUSTED", "rate_limit_exceeded")
    if "leakkey" in behaviours:
        return provider_error(provider, 400, f"Request rejected for API key {key} (fake leak)")
    if "leaktext" in behaviours:
        return Response(f"Bad gateway: upstream refused key {key}", 502, media_type="text/plain")
    if "leakstream" in behaviours:
        event = json.dumps({"error": {"message": f"key {key} is over its quota"}})
        half = event.index(key) + len(key) // 2
        pieces = [f"data: {event[:half]}".encode(), f"{event[half:]}\n\n".encode()]
        return call.stream(pieces, None, "text/event-stream", lambda: None)
    if provider == "gemini":
        response = gemini_dispatch(call)
    elif provider == "anthropic":
        response = anthropic_dispatch(call)
    else:
        table = OPENAI_ROUTES if provider == "openai" else OPENROUTER_ROUTES
        handler = table.get((request.method, sub))
        response = handler(call) if handler else None
    if response is None:
        return provider_error(provider, 404, f"Invalid URL ({request.method} /{sub})", code=None)
    if provider == "openai":  # as OpenAI does: which of the key owner's accounts answered
        response.headers["openai-organization"] = "org-fake-operator"
        response.headers["openai-project"] = "proj_fake_operator"
        response.headers["openai-processing-ms"] = "7"
    return response


def reset(app: Starlette) -> None:
    """Forget recorded requests and billed calls (between tests sharing one app)."""
    app.state.received.clear()
    app.state.billed.clear()


def create_fake_upstream(keys: dict[str, str] | None = None, *, pace: float = 0.0) -> Starlette:
    """The fake providers as one ASGI app; `keys` overrides DEFAULT_KEYS per provider; `pace`
    spaces stream pieces that many seconds apart."""
    methods = ["GET", "POST", "PUT", "PATCH", "DELETE"]
    app = Starlette(routes=[Route("/{provider:str}/{sub:path}", _handle, methods=methods)])
    app.state.keys = {**DEFAULT_KEYS, **(keys or {})}
    app.state.pace = pace
    app.state.received = []
    app.state.billed = []
    app.state.reset = lambda: reset(app)
    return app
