"""Forwarding: `/openai/...`, `/openrouter/...`, `/geminiv1beta/...` to the provider, with the
operator's key swapped in, budgets reserved and settled, and every call priced and recorded.

Streams are a tee: bytes go to the client unchanged as they arrive; a copy feeds the usage reader;
the cost is recorded in `finally`, so a stream the client abandons or the provider breaks is
recorded too.
"""

from __future__ import annotations

import json
import random
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import anyio
import httpx
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.types import Send

from relay.budget import Budgets, Reservation, budget_headers
from relay.cost import compute_cost, estimate_cost, estimate_tokens, reserve_estimate
from relay.errors import (
    BadRequest,
    NotFound,
    PayloadTooLarge,
    QuotaExceeded,
    ServiceUnavailable,
    UpstreamError,
    UpstreamTimeout,
    mask_secret,
)
from relay.logs import log_request
from relay.openrouter_prices import OpenRouterPrices
from relay.pricing import Price, PriceTable
from relay.providers import PROVIDERS, Endpoint, Provider, classify
from relay.settings import PROVIDER_KEY_VARS, Settings
from relay.sse import StreamUsageReader
from relay.store import LedgerRow, Store, utc_now
from relay.tokens import Caller, TokenVerifier, token_from_request
from relay.usage import (
    Usage,
    audio_seconds,
    request_text_chars,
    usage_from_audio_upload,
    usage_from_json,
    usage_from_speech_request,
)

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
DEFAULT_OUTPUT_ALLOWANCE = 4096  # tokens reserved when the request names no maximum
MIN_OUTPUT_TOKENS = 16  # below this a capped reply is useless: refuse instead
UNKNOWN_PRICE_RESERVE = Decimal("0.001")  # OpenRouter models whose price we cannot look up yet
MAX_MODEL_CHARS = 256  # model names are short; a huge one would only bloat the ledger and logs


@dataclass(slots=True)
class Call:
    """One client request on its way through the relay."""

    provider: Provider
    endpoint: Endpoint
    path: str
    email: str
    model: str
    stream: bool
    body: bytes
    json: dict[str, Any] | None
    input_tokens: int
    origin: str
    started: float = field(default_factory=time.perf_counter)
    ts: Any = field(default_factory=utc_now)
    id: str = field(default_factory=lambda: f"{random.getrandbits(128):032x}")  # uuid4 costs a syscall
    upload_seconds: Decimal | None = None  # transcription: the uploaded audio's playing time


class Relay:
    """The provider routes' handler; one instance per app, built in the lifespan."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        budgets: Budgets,
        prices: PriceTable,
        verifier: TokenVerifier,
        clients: dict[str, httpx.AsyncClient],
        keys: dict[str, str],
    ):
        self.settings = settings
        self.store = store
        self.budgets = budgets
        self.prices = prices
        self.verifier = verifier
        self.clients = clients  # provider name -> client (the dev demo model has its own)
        self.keys = keys
        self.openrouter_prices = OpenRouterPrices()
        self._urls: dict[tuple[str, tuple[tuple[str, str], ...]], httpx.URL] = {}

    # -- entry point ------------------------------------------------------------------------
    async def __call__(self, request: Request) -> Response:
        route = request.path_params["provider"]
        provider = PROVIDERS.get(route)
        if provider is None:
            raise NotFound(f"Unknown provider: {route}", code="unknown_provider")
        path = _checked_path("/" + request.path_params.get("path", ""))
        token = token_from_request(
            request.headers, request.query_params, gemini_path=provider.name == "gemini"
        )
        caller = self.verifier.caller(token)
        body = await read_body(request, self.settings.max_body_bytes)
        if caller.native_key:
            return await self._forward_native(request, provider, path, body, caller)
        assert caller.email is not None
        return await self._forward_user(request, provider, path, body, caller.email)

    async def call_json(
        self, route: str, path: str, payload: dict[str, Any], email: str, origin: str = ""
    ) -> dict[str, Any]:
        """An internal JSON call on the user's behalf (e.g. /similarity's embeddings), with the
        same budget, pricing and ledger as a forwarded one. Upstream errors raise UpstreamError
        carrying the provider's message."""
        provider = PROVIDERS[route]
        key = self.keys.get(provider.name)
        if key is None:
            raise ServiceUnavailable(
                f"{provider.route} is not configured on this relay "
                f"(the operator has not set {PROVIDER_KEY_VARS[provider.name]})"
            )
        body = json.dumps(payload).encode()
        call = Call(
            provider=provider,
            endpoint=classify(provider, "POST", path),
            path=path,
            email=email,
            model=str(payload.get("model", "")),
            stream=False,
            body=body,
            json=payload,
            input_tokens=estimate_tokens(len(body)),
            origin=origin,
        )
        price = await self._price(provider, call)
        if provider.priced_by_table and price is None:
            raise BadRequest(f"Model {call.model} has no price on this relay", code="model_not_priced")
        reservation = self._admit(call, price)
        client = self.clients.get(provider.name) or self.clients["default"]
        upstream = client.build_request(
            "POST",
            self.settings.provider_bases[provider.name] + path,
            headers={
                provider.auth_header: provider.auth_prefix + key,
                "content-type": "application/json",
                "accept-encoding": "identity",
            },
            content=call.body,
        )
        try:
            resp = await self._send(client, upstream, call, reservation, price)
            answer = await self._buffered(call, resp, price, reservation)
        finally:
            self.budgets.settle(reservation)
        data = json.loads(answer.body)
        if answer.status_code >= 400:
            message = data.get("error", {}).get("message") if isinstance(data, dict) else None
            error = UpstreamError(f"The provider refused the call: {message or answer.status_code}")
            error.status = answer.status_code if answer.status_code < 500 else 502
            raise error
        return data

    # -- native provider keys: a plain pass-through, no budget, no costing ----------------------
    async def _forward_native(
        self, request: Request, provider: Provider, path: str, body: bytes, caller: Caller
    ) -> Response:
        assert caller.native_key is not None
        client = self.clients.get(provider.name) or self.clients["default"]
        upstream = self._build(client, request, provider, path, body, caller.native_key)
        resp = await self._send(client, upstream)
        return ClosingStream(
            _passthrough(resp),
            status_code=resp.status_code,
            headers=response_headers(resp.headers),
        )

    # -- AI Pipe users: budget, price, forward, record ------------------------------------------
    async def _forward_user(
        self, request: Request, provider: Provider, path: str, body: bytes, email: str
    ) -> Response:
        key = self.keys.get(provider.name)
        if key is None:
            raise ServiceUnavailable(
                f"{provider.route} is not configured on this relay "
                f"(the operator has not set {PROVIDER_KEY_VARS[provider.name]})"
            )
        endpoint = classify(provider, request.method, path)
        if endpoint.kind == "unknown":
            raise BadRequest(
                f"{request.method} /{provider.route}{path} is not supported: the relay cannot "
                "price it, so it does not forward it",
                code="unsupported_endpoint",
            )
        call = self._describe(request, provider, endpoint, path, body, email)
        price = await self._price(provider, call)
        if endpoint.kind != "free" and provider.priced_by_table and price is None:
            raise BadRequest(
                f"Model {call.model or '(none)'} has no price on this relay, so it cannot be "
                "budgeted; ask the operator to add it to the price table",
                code="model_not_priced",
            )
        reservation = self._admit(call, price)
        try:
            client = self.clients.get(provider.name) or self.clients["default"]
            upstream = self._build(client, request, provider, path, call.body, key)
            resp = await self._send(client, upstream, call, reservation, price)
        except BaseException:
            self.budgets.settle(reservation)
            raise
        if call.stream or not _is_json(resp):
            return self._stream(call, resp, price, reservation)
        return await self._buffered(call, resp, price, reservation)

    def _describe(
        self,
        request: Request,
        provider: Provider,
        endpoint: Endpoint,
        path: str,
        body: bytes,
        email: str,
    ) -> Call:
        data: dict[str, Any] | None = None
        ctype = request.headers.get("content-type", "")
        if body and "json" in ctype.lower():
            try:
                parsed = json.loads(body, object_pairs_hook=_unique_keys)
            except RecursionError as e:
                raise BadRequest("Request body is nested too deeply", code="invalid_json") from e
            except (ValueError, UnicodeDecodeError) as e:
                raise BadRequest(f"Request body is not valid JSON: {e}", code="invalid_json") from e
            if not isinstance(parsed, dict):
                raise BadRequest("Request body must be a JSON object", code="invalid_json")
            data = parsed
        model = endpoint.model or ""
        stream = endpoint.stream
        if data is not None and provider.openai_style:
            raw_model = data.get("model", "")
            if not isinstance(raw_model, str) or len(raw_model) > MAX_MODEL_CHARS:
                raise BadRequest(
                    f"'model' must be a string of at most {MAX_MODEL_CHARS} characters",
                    code="invalid_model",
                )
            model = raw_model
            stream = data.get("stream") is True
        upload_seconds = None
        if endpoint.kind == "transcription" and data is None:
            parts = _multipart_parts(body, ctype)
            model = parts.get("model", b"").decode("utf-8", "replace").strip()[:MAX_MODEL_CHARS]
            stream = parts.get("stream", b"").strip().lower() == b"true"
            upload_seconds = audio_seconds(parts.get("file", b""))
        # Prompt text only: base64 media in a JSON body would inflate the estimate many times.
        text_size = request_text_chars(data) if data is not None else 0
        return Call(
            provider=provider,
            endpoint=endpoint,
            path=path,
            email=email,
            model=model,
            stream=stream,
            body=body,
            json=data,
            input_tokens=estimate_tokens(text_size),
            origin=request.headers.get("origin", "")[:200],
            upload_seconds=upload_seconds,
        )

    async def _price(self, provider: Provider, call: Call) -> Price | None:
        if not call.model:
            return None
        if provider.priced_by_table:
            return self.prices.lookup(provider.name, call.model)
        client = self.clients.get(provider.name) or self.clients["default"]
        return await self.openrouter_prices.price(
            client, self.settings.provider_bases[provider.name], call.model
        )

    def _admit(self, call: Call, price: Price | None) -> Reservation:
        if call.endpoint.kind == "free":
            return self.budgets.admit_free(call.email)
        requested = _max_output(call)
        choices = _choices(call)  # n = 8 replies cost 8 allowances
        allowance = (requested or DEFAULT_OUTPUT_ALLOWANCE) * choices
        if price is None:
            estimate = UNKNOWN_PRICE_RESERVE
        elif not price.token_priced:  # tts-1, whisper-1, dall-e: the units the request asks for
            estimate = self._estimate(call, price, 0)
        else:
            estimate = reserve_estimate(price, call.input_tokens, allowance)
        reservation = self.budgets.admit(call.email, estimate)
        if price is not None and estimate > reservation.remaining_before and call.json is not None:
            # The budget left cannot pay for the whole allowance: cap the reply to what it can.
            cap = _affordable_output(price, call.input_tokens, reservation.remaining_before)
            cap //= choices
            if cap < MIN_OUTPUT_TOKENS:
                self.budgets.settle(reservation)
                spent = self.budgets.remaining(call.email)
                raise QuotaExceeded(
                    f"Budget left (${max(spent, Decimal(0)):.4f}) cannot pay for a reply from "
                    f"{call.model}",
                    headers=budget_headers(spent),
                )
            if requested is None or cap < requested:
                _set_max_output(call, cap)
        if call.stream and call.provider.openai_style and call.json is not None:
            _ask_for_stream_usage(call)
        return reservation

    # -- upstream ---------------------------------------------------------------------------
    def _build(
        self,
        client: httpx.AsyncClient,
        request: Request,
        provider: Provider,
        path: str,
        body: bytes,
        key: str,
    ) -> httpx.Request:
        base = self.settings.provider_bases[provider.name]
        query = [(k, v) for k, v in request.query_params.multi_items() if k != "key"]
        # As bytes: Starlette decoded them as latin-1, and httpx would refuse (500) any non-ASCII
        # value given back as str.
        headers = [
            (k.encode("latin-1"), v.encode("latin-1"))
            for k, v in request.headers.items()
            if k not in DROP_REQUEST and not k.startswith(("x-forwarded-", "cf-", "x-aipipe-"))
        ]
        headers.append((provider.auth_header.encode(), (provider.auth_prefix + key).encode()))
        headers.append((b"accept-encoding", b"identity"))  # we read usage from the bytes
        # What client.build_request does, minus its cost (~0.1 ms: it re-parses the URL and
        # merges cookies on every call): the URL is parsed once per distinct path and query.
        present = {k for k, _ in headers}
        defaults = [(k, v) for k, v in client.headers.raw if k.lower() not in present]
        return httpx.Request(
            request.method,
            self._url(base + path, tuple(query)),
            headers=defaults + headers,
            content=body,
            extensions={"timeout": client.timeout.as_dict()},
        )

    def _url(self, url: str, query: tuple[tuple[str, str], ...]) -> httpx.URL:
        parsed = self._urls.get((url, query))
        if parsed is None:
            if len(self._urls) >= 1024:  # bounded: paths and queries are the client's choice
                self._urls.clear()
            parsed = self._urls[url, query] = httpx.URL(url, params=query)
        return parsed

    async def _send(
        self,
        client: httpx.AsyncClient,
        upstream: httpx.Request,
        call: Call | None = None,
        reservation: Reservation | None = None,
        price: Price | None = None,
    ) -> httpx.Response:
        try:
            return await client.send(upstream, stream=True)
        except httpx.TimeoutException as e:
            self._record_failure(call, 504, e, price)
            raise UpstreamTimeout(f"The provider did not answer in time ({type(e).__name__})") from e
        except httpx.HTTPError as e:
            self._record_failure(call, 502, e, price)
            raise UpstreamError(f"Could not reach the provider ({type(e).__name__})") from e

    def _record_failure(
        self, call: Call | None, status: int, error: httpx.HTTPError, price: Price | None
    ) -> None:
        if call is None:
            return
        if isinstance(error, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout):
            # Nothing reached the provider: nothing to pay.
            self._record(call, status, "broken", None, Decimal(0), "free")
        elif call.endpoint.kind == "free":
            self._record(call, status, "broken", None, Decimal(0), "free")
        else:
            # The prompt was sent and may be billed even though no answer came: charge it.
            self._record(call, status, "broken", None, self._estimate(call, price, 0), "estimated")

    # -- answers ----------------------------------------------------------------------------
    async def _buffered(
        self, call: Call, resp: httpx.Response, price: Price | None, reservation: Reservation
    ) -> Response:
        """A JSON answer: read it whole (it is complete only at the end anyway), price it, and
        tell the client its cost in headers."""
        try:
            content = await resp.aread()
        except httpx.HTTPError as e:
            cost = self._estimate(call, price, 0)
            self._record(call, 502, "broken", None, cost, "estimated")
            self.budgets.settle(reservation)
            raise UpstreamError(f"The provider broke off its answer ({type(e).__name__})") from e
        finally:
            await resp.aclose()
        usage, cost, source, outcome = None, Decimal(0), "free", "ok"
        if resp.status_code >= 400:
            outcome = "error"
            content = mask_keys(content, self.keys.values())
        elif call.endpoint.kind != "free":
            usage = _usage_of(call.provider.name, content) or _request_usage(call, len(content))
            cost, source = self._cost(call, price, usage, _answer_chars(call, content))
        self._record(call, resp.status_code, outcome, usage, cost, source)
        self.budgets.settle(reservation)
        headers = response_headers(resp.headers)
        headers.update(budget_headers(self.budgets.remaining(call.email), cost))
        headers["x-aipipe-cost-source"] = source
        return Response(content, status_code=resp.status_code, headers=headers)

    def _stream(
        self, call: Call, resp: httpx.Response, price: Price | None, reservation: Reservation
    ) -> StreamingResponse:
        headers = response_headers(resp.headers)
        headers.update(budget_headers(reservation.remaining_before))
        is_sse = "text/event-stream" in resp.headers.get("content-type", "")
        return ClosingStream(
            self._tee(call, resp, price, reservation, is_sse),
            status_code=resp.status_code,
            headers=headers,
        )

    async def _tee(
        self,
        call: Call,
        resp: httpx.Response,
        price: Price | None,
        reservation: Reservation,
        is_sse: bool,
    ) -> AsyncIterator[bytes]:
        reader = StreamUsageReader(call.provider.name)
        outcome, status, sent, tail = "aborted", resp.status_code, 0, b"\n\n"
        if resp.status_code >= 400:
            outcome = "error"
        settled: tuple[Decimal, str] | None = None
        try:
            try:
                async for chunk in resp.aiter_raw():
                    reader.feed(chunk)
                    sent += len(chunk)
                    if chunk:
                        tail = chunk[-2:]
                    yield chunk
                if outcome != "error":
                    outcome = "ok"
            except httpx.HTTPError as e:
                outcome, status, tail = "broken", 502, b"\n\n"
                if is_sse:
                    message = f"The provider broke off the stream ({type(e).__name__})"
                    event = {"error": {"message": message, "type": "upstream_error"}}
                    yield f"data: {json.dumps(event)}\n\n".encode()
            settled = self._settle_stream(call, reader, outcome, status, sent, price, reservation)
            if is_sse and call.provider.openai_style and outcome != "error":
                yield _cost_comment(settled, self.budgets.remaining(call.email), tail)
        finally:
            # Record before any await: a cancelled (client gone) generator may not await again.
            if settled is None:
                self._settle_stream(call, reader, outcome, status, sent, price, reservation)
            with anyio.CancelScope(shield=True):
                await resp.aclose()

    def _settle_stream(
        self,
        call: Call,
        reader: StreamUsageReader,
        outcome: str,
        status: int,
        sent: int,
        price: Price | None,
        reservation: Reservation,
    ) -> tuple[Decimal, str]:
        """Price and record a stream that ended (or was abandoned); release its reservation."""
        reader.close()  # a last event with no trailing newline still counts
        usage = reader.usage or _request_usage(call, sent)
        if outcome == "error" or call.endpoint.kind == "free":
            cost, source = Decimal(0), "free"
        elif usage is not None and (computed := compute_cost(price, usage)) is not None:
            cost, source = computed  # reported usage: no need to measure the text (it costs)
        else:
            # Text measured in the events; bytes only for answers the reader cannot parse.
            output = reader.output_chars if reader.structured else sent
            cost, source = self._cost(call, price, usage, output)
        self._record(call, status, outcome, usage, cost, source)
        self.budgets.settle(reservation)
        return cost, source

    # -- cost and ledger ----------------------------------------------------------------------
    def _cost(
        self, call: Call, price: Price | None, usage: Usage | None, output_size: int
    ) -> tuple[Decimal, str]:
        if usage is not None:
            computed = compute_cost(price, usage)
            if computed is not None:
                return computed
        return self._estimate(call, price, output_size), "estimated"

    def _estimate(self, call: Call, price: Price | None, output_size: int) -> Decimal:
        if price is None:
            return UNKNOWN_PRICE_RESERVE  # never $0: an unknown price is estimated and marked
        # Models billed per character, minute or image (tts-1, whisper-1, dall-e) have no
        # token price to estimate with: bill the units the request asked for instead.
        usage = _request_usage(call, output_size) or _requested_images(call)
        if usage is not None:
            computed = compute_cost(price, usage)
            if computed is not None and computed[0] > 0:
                return computed[0]
        return estimate_cost(
            price, input_tokens=call.input_tokens, output_tokens=estimate_tokens(output_size)
        )

    def _record(
        self,
        call: Call,
        status: int,
        outcome: str,
        usage: Usage | None,
        cost: Decimal,
        source: str,
    ) -> None:
        u = usage or Usage()
        latency = (time.perf_counter() - call.started) * 1000
        log_request(
            id=call.id, user=call.email, provider=call.provider.name, model=call.model,
            path=call.path, status=status, outcome=outcome, cost=str(cost), source=source,
            latency_ms=round(latency, 2), streamed=call.stream,
        )
        self.store.record(
            LedgerRow(
                id=call.id,
                ts=call.ts,
                date=call.ts.date(),
                email=call.email,
                provider=call.provider.name,
                path=call.path,
                model=call.model,
                status=status,
                outcome=outcome,
                input_tokens=u.input_tokens if usage else call.input_tokens,
                output_tokens=u.output_tokens,
                cached_tokens=u.cached_input_tokens,
                reasoning_tokens=u.reasoning_tokens,
                cost=cost,
                cost_source=source,
                latency_ms=latency,
                streamed=call.stream,
                origin=call.origin,
            )
        )


# -- helpers ----------------------------------------------------------------------------------
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


_PATH_ODD = frozenset("?#\\") | {chr(c) for c in range(32)} | {"\x7f"}


def _checked_path(path: str) -> str:
    """The decoded path under a provider. `.`/`..` segments (also sent as %2e) would climb out
    of the provider's base URL once joined to it, and an encoded `?` or `#` would smuggle a
    query or cut the path, so such paths are refused rather than normalised."""
    if any(seg in (".", "..") for seg in path.split("/")) or not _PATH_ODD.isdisjoint(path):
        raise BadRequest(
            "Path must not contain '.' or '..' segments, encoded '?' or '#', backslashes or "
            "control characters",
            code="invalid_path",
        )
    return path


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """JSON objects with a repeated key are refused: we and the provider might read different
    values of it (e.g. the model we price and the model it runs)."""
    out = dict(pairs)
    if len(out) != len(pairs):
        raise BadRequest("Request body repeats a key in one object", code="invalid_json")
    return out


async def read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"Request body is larger than {limit // (1024 * 1024)} MB")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"Request body is larger than {limit // (1024 * 1024)} MB")
        chunks.append(chunk)
    return b"".join(chunks)


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


async def _passthrough(resp: httpx.Response) -> AsyncIterator[bytes]:
    try:
        async for chunk in resp.aiter_raw():
            yield chunk
    finally:
        with anyio.CancelScope(shield=True):
            await resp.aclose()


def _answer_chars(call: Call, content: bytes) -> int:
    """Characters of reply text in a JSON answer (not its keys and ids), for an estimate when
    the answer told no usage; read only then."""
    reader = StreamUsageReader(call.provider.name)
    reader.feed(content)
    reader.close()
    return reader.output_chars if reader.structured else len(content)


def _cost_comment(settled: tuple[Decimal, str], remaining: Decimal, tail: bytes) -> bytes:
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


def _is_json(resp: httpx.Response) -> bool:
    return "json" in resp.headers.get("content-type", "")


def _usage_of(provider: str, content: bytes) -> Usage | None:
    try:
        data = json.loads(content, parse_float=Decimal)
    except (ValueError, UnicodeDecodeError):
        return None
    return usage_from_json(provider, data) if isinstance(data, dict) else None


_MAX_FIELDS = ("max_completion_tokens", "max_tokens", "max_output_tokens")


def _request_usage(call: Call, answer_size: int = 0) -> Usage | None:
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


def _requested_images(call: Call) -> Usage | None:
    """What an image request would have been billed, for when no answer came: the images it
    asked for (per-image models) and, for GPT Image, their output tokens by quality and size."""
    if call.endpoint.kind != "images" or call.json is None:
        return None
    n = _choices(call)
    quality = call.json.get("quality")
    per = _IMAGE_TOKENS.get(quality if isinstance(quality, str) else "", _IMAGE_TOKENS["high"])
    if call.json.get("size") in ("1024x1536", "1536x1024"):
        per = per * 3 // 2
    return Usage(input_tokens=call.input_tokens, output_tokens=per * n,
                 image_output_tokens=per * n, images=n, estimated=True)


def _max_output(call: Call) -> int | None:
    data = call.json
    if data is None:
        return None
    if not call.provider.openai_style:
        values = [_gemini_config(call).get("maxOutputTokens")]
    else:
        values = [data.get(f) for f in _MAX_FIELDS]
    present = [v for v in values if v is not None]
    if not present:
        return None
    if any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in present):
        raise BadRequest("max tokens must be a positive whole number", code="invalid_max_tokens")
    return max(present)  # several limits given: reserve for the largest, whichever applies


def _gemini_config(call: Call) -> dict[str, Any]:
    """Gemini's generationConfig. Its snake_case spelling is refused: the limits we read and cap
    would not be the ones Google applies."""
    data = call.json or {}
    if "generation_config" in data:
        raise BadRequest("Write generationConfig (camelCase)", code="invalid_generation_config")
    config = data.get("generationConfig", {})
    if not isinstance(config, dict):
        raise BadRequest("generationConfig must be an object", code="invalid_generation_config")
    return config


def _choices(call: Call) -> int:
    """How many replies one call asks for (OpenAI `n`, `best_of`; Gemini `candidateCount`)."""
    if call.json is None:
        return 1
    if call.provider.openai_style:
        values = [call.json.get("n"), call.json.get("best_of")]
    else:
        values = [_gemini_config(call).get("candidateCount")]
    present = [v for v in values if v is not None]
    if any(isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= 128 for v in present):
        raise BadRequest("n must be a whole number from 1 to 128", code="invalid_n")
    return max(present, default=1)


def _set_max_output(call: Call, cap: int) -> None:
    data = call.json
    assert data is not None
    if not call.provider.openai_style:
        config = data.setdefault("generationConfig", {})
        if isinstance(config, dict):
            config["maxOutputTokens"] = cap
    elif call.endpoint.kind == "responses":
        data["max_output_tokens"] = cap
    else:
        present = [f for f in ("max_completion_tokens", "max_tokens") if data.get(f) is not None]
        for f in present or ["max_completion_tokens" if call.provider.name == "openai" else "max_tokens"]:
            data[f] = cap
    call.body = json.dumps(data).encode()


def _ask_for_stream_usage(call: Call) -> None:
    data = call.json
    assert data is not None
    if call.endpoint.kind == "chat":
        options = data.get("stream_options")
        if not isinstance(options, dict) or options.get("include_usage") is not True:
            data["stream_options"] = {**(options if isinstance(options, dict) else {}), "include_usage": True}
            call.body = json.dumps(data).encode()


def _affordable_output(price: Price, input_tokens: int, remaining: Decimal) -> int:
    per_token = reserve_estimate(price, 0, 1)
    if per_token <= 0:
        return DEFAULT_OUTPUT_ALLOWANCE
    left = remaining - reserve_estimate(price, input_tokens, 0)
    return int(left / per_token) if left > 0 else 0


_BOUNDARY = re.compile(r'boundary="?([^";]{1,200})"?', re.IGNORECASE)
_PART_NAME = re.compile(rb'content-disposition:[^\r\n]*?\bname="([^"]*)"', re.IGNORECASE)


def _multipart_parts(body: bytes, content_type: str) -> dict[str, bytes]:
    """The parts of a multipart/form-data body by field name (the first of each name), split
    on the boundary the content type names — as the provider splits it, so bytes inside an
    uploaded file that look like a field (`name="model"`) are never taken for one."""
    found = _BOUNDARY.search(content_type)
    if not found:
        return {}
    delimiter = b"\r\n--" + found.group(1).encode("latin-1")
    parts: dict[str, bytes] = {}
    for chunk in (b"\r\n" + body).split(delimiter)[1:]:
        if chunk.startswith(b"--"):
            break  # the closing delimiter
        head_end = chunk.find(b"\r\n\r\n")
        if head_end < 0:
            continue
        name = _PART_NAME.search(chunk, 0, head_end)
        if name:
            parts.setdefault(name.group(1).decode("utf-8", "replace"), chunk[head_end + 4 :])
    return parts
