"""Forwarding: `/openai/...`, `/openrouter/...`, `/geminiv1beta/...` to the provider, with the
operator's key swapped in, budgets reserved and settled, and every call priced and recorded.

Streams are a tee: bytes go to the client unchanged as they arrive; a copy feeds the usage reader;
the cost is recorded in `finally`, so a stream the client abandons or the provider breaks is
recorded too.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import anyio
import httpx
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from relay.auth.tokens import Caller, TokenVerifier, token_from_request
from relay.costing.budget import Budgets, Reservation, budget_headers
from relay.costing.cost import estimate_tokens, reserve_estimate
from relay.costing.pricing import Price, PriceTable
from relay.errors import (
    BadRequest,
    NotFound,
    QuotaExceeded,
    RateLimited,
    ServiceUnavailable,
    UpstreamError,
    UpstreamTimeout,
)
from relay.forward.accounting import UNKNOWN_PRICE_RESERVE, call_cost, estimate, record
from relay.forward.call import (
    Call,
    ask_for_stream_usage,
    checked_path,
    choices,
    describe,
    max_output,
    read_body,
    set_max_output,
)
from relay.forward.estimates import (
    DEFAULT_OUTPUT_ALLOWANCE,
    affordable_output,
    answer_chars,
    request_usage,
    usage_of,
)
from relay.forward.passthrough import (
    DROP_REQUEST,
    ClosingStream,
    cost_comment,
    is_json,
    mask_keys,
    passthrough,
    response_headers,
)
from relay.providers.openrouter_prices import OpenRouterPrices
from relay.providers.registry import PROVIDERS, Provider, classify
from relay.providers.sse import StreamUsageReader
from relay.settings import Settings
from relay.store import Store

MIN_OUTPUT_TOKENS = 16  # below this a capped reply is useless: refuse instead


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
        path = checked_path("/" + request.path_params.get("path", ""))
        token = token_from_request(
            request.headers, request.query_params, gemini_path=provider.key_in_query
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
                f"(the operator has not set {provider.key_var})"
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
            passthrough(resp),
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
                f"(the operator has not set {provider.key_var})"
            )
        endpoint = classify(provider, request.method, path)
        if endpoint.kind == "unknown":
            raise BadRequest(
                f"{request.method} /{provider.route}{path} is not supported: the relay cannot "
                "price it, so it does not forward it",
                code="unsupported_endpoint",
            )
        call = describe(request, provider, endpoint, path, body, email)
        price = await self._price(provider, call)
        if endpoint.kind != "free" and provider.priced_by_table and price is None:
            raise BadRequest(
                f"Model {call.model or '(none)'} has no price on this relay, so it cannot be "
                "budgeted; ask the operator to add it to the price table",
                code="model_not_priced",
            )
        try:
            reservation = self._admit(call, price)
        except (QuotaExceeded, RateLimited):
            # Never forwarded, but admins want to see who hits their limits.
            record(self.store, call, 429, "refused", None, Decimal(0), "free")
            raise
        try:
            client = self.clients.get(provider.name) or self.clients["default"]
            upstream = self._build(client, request, provider, path, call.body, key)
            resp = await self._send(client, upstream, call, reservation, price)
        except BaseException:
            self.budgets.settle(reservation)
            raise
        if call.stream or not is_json(resp):
            return self._stream(call, resp, price, reservation)
        return await self._buffered(call, resp, price, reservation)

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
        requested = max_output(call)
        replies = choices(call)  # n = 8 replies cost 8 allowances
        allowance = (requested or DEFAULT_OUTPUT_ALLOWANCE) * replies
        if price is None:
            hold = UNKNOWN_PRICE_RESERVE
        elif not price.token_priced:  # tts-1, whisper-1, dall-e: the units the request asks for
            hold = estimate(call, price, 0)
        else:
            hold = reserve_estimate(price, call.input_tokens, allowance)
        reservation = self.budgets.admit(call.email, hold)
        if price is not None and hold > reservation.remaining_before and call.json is not None:
            # The budget left cannot pay for the whole allowance: cap the reply to what it can.
            cap = affordable_output(price, call.input_tokens, reservation.remaining_before)
            cap //= replies
            if cap < MIN_OUTPUT_TOKENS:
                self.budgets.settle(reservation)
                spent = self.budgets.remaining(call.email)
                raise QuotaExceeded(
                    f"Budget left (${max(spent, Decimal(0)):.4f}) cannot pay for a reply from "
                    f"{call.model}",
                    headers=budget_headers(spent),
                )
            if requested is None or cap < requested:
                set_max_output(call, cap)
        if call.stream and call.provider.openai_style and call.json is not None:
            ask_for_stream_usage(call)
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
            record(self.store, call, status, "broken", None, Decimal(0), "free")
        elif call.endpoint.kind == "free":
            record(self.store, call, status, "broken", None, Decimal(0), "free")
        else:
            # The prompt was sent and may be billed even though no answer came: charge it.
            record(self.store, call, status, "broken", None, estimate(call, price, 0), "estimated")

    # -- answers ----------------------------------------------------------------------------
    async def _buffered(
        self, call: Call, resp: httpx.Response, price: Price | None, reservation: Reservation
    ) -> Response:
        """A JSON answer: read it whole (it is complete only at the end anyway), price it, and
        tell the client its cost in headers."""
        try:
            content = await resp.aread()
        except httpx.HTTPError as e:
            cost = estimate(call, price, 0)
            record(self.store, call, 502, "broken", None, cost, "estimated")
            self.budgets.settle(reservation)
            raise UpstreamError(f"The provider broke off its answer ({type(e).__name__})") from e
        finally:
            await resp.aclose()
        usage, cost, source, outcome = None, Decimal(0), "free", "ok"
        if resp.status_code >= 400:
            outcome = "error"
            content = mask_keys(content, self.keys.values())
        elif call.endpoint.kind != "free":
            usage = usage_of(call.provider.name, content) or request_usage(call, len(content))
            cost, source = call_cost(call, price, usage, lambda: answer_chars(call, content))
        record(self.store, call, resp.status_code, outcome, usage, cost, source)
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
                yield cost_comment(settled, self.budgets.remaining(call.email), tail)
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
        usage = reader.usage or request_usage(call, sent)
        if outcome == "error":
            cost, source = Decimal(0), "free"
        else:
            # Text measured in the events; bytes only for answers the reader cannot parse.
            cost, source = call_cost(
                call, price, usage, lambda: reader.output_chars if reader.structured else sent
            )
        record(self.store, call, status, outcome, usage, cost, source)
        self.budgets.settle(reservation)
        return cost, source

    # -- cost and ledger ----------------------------------------------------------------------
