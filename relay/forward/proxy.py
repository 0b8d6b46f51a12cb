"""Forwarding: `/openai/...`, `/openrouter/...`, `/geminiv1beta/...`, `/gemini/<version>/...` to
the provider, with the operator's key swapped in. A call is read (call.py), admitted against its
budget (admission.py), sent upstream (here), and its answer passed back, priced and recorded
(answers.py).
"""

from __future__ import annotations

import json
import time
from decimal import Decimal
from typing import Any

import httpx
from starlette.requests import Request
from starlette.responses import Response

from relay.auth.tokens import Caller, TokenVerifier, token_from_request
from relay.costing.budget import Budgets, Reservation
from relay.costing.cost import estimate_tokens
from relay.costing.pricing import Price, PriceTable
from relay.errors import (
    BadRequest,
    NotFound,
    QuotaExceeded,
    RateLimited,
    RelayError,
    ServiceUnavailable,
    UpstreamError,
    UpstreamTimeout,
)
from relay.forward.accounting import estimate, record
from relay.forward.admission import admit
from relay.forward.answers import Answers
from relay.forward.call import (
    Call,
    checked_path,
    describe,
    read_body,
)
from relay.forward.passthrough import (
    ClosingStream,
    forwardable,
    is_json,
    passthrough,
    response_headers,
)
from relay.logs import log_request
from relay.providers.openrouter_prices import OpenRouterPrices
from relay.providers.registry import PROVIDERS, Provider, classify, upstream_base
from relay.settings import Settings
from relay.store import Store


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
        self.answers = Answers(store, budgets, keys.values())
        self.openrouter_prices = OpenRouterPrices()
        self._urls: dict[tuple[str, tuple[tuple[str, str], ...]], httpx.URL] = {}
        # Per route: what its paths are joined to (/gemini's carry their own API version).
        self.bases = {
            p.route: upstream_base(p, settings.provider_bases[p.name]) for p in PROVIDERS.values()
        }

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
        if price is None:
            raise _unpriced(provider, call)
        reservation = await admit(self.budgets, call, price)
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
            answer = await self.answers.buffered(call, resp, price, reservation)
        finally:
            await self.budgets.settle(reservation)
        try:
            data = json.loads(answer.body)
        except (ValueError, UnicodeDecodeError) as e:
            raise UpstreamError(
                f"The provider's answer is not JSON (status {answer.status_code})",
                code="malformed_answer",
            ) from e
        if answer.status_code >= 400:
            error = data.get("error") if isinstance(data, dict) else None
            message = error.get("message") if isinstance(error, dict) else None
            refused = UpstreamError(f"The provider refused the call: {message or answer.status_code}")
            refused.status = answer.status_code if answer.status_code < 500 else 502
            raise refused
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
        if endpoint.kind != "free" and price is None:
            raise _unpriced(provider, call)
        try:
            reservation = await admit(self.budgets, call, price)
        except (QuotaExceeded, RateLimited):
            # Never forwarded, but admins want to see who hits their limits.
            record(self.store, call, 429, "refused", None, Decimal(0), "free")
            raise
        try:
            client = self.clients.get(provider.name) or self.clients["default"]
            upstream = self._build(client, request, provider, path, call.body, key)
            resp = await self._send(client, upstream, call, reservation, price)
        except BaseException:
            await self.budgets.settle(reservation)
            raise
        # An error is read whole, streamed request or not: a client gets a complete JSON error.
        if resp.status_code < 400 and (call.stream or not is_json(resp)):
            return self.answers.stream(call, resp, price, reservation)
        return await self.answers.buffered(call, resp, price, reservation)

    async def _price(self, provider: Provider, call: Call) -> Price | None:
        if not call.model:
            return None
        if provider.priced_by_table:
            return self.prices.lookup(provider.name, call.model)
        client = self.clients.get(provider.name) or self.clients["default"]
        return await self.openrouter_prices.price(
            client, self.settings.provider_bases[provider.name], call.model, call.json
        )

    def _build(
        self,
        client: httpx.AsyncClient,
        request: Request,
        provider: Provider,
        path: str,
        body: bytes,
        key: str,
    ) -> httpx.Request:
        base = self.bases[provider.route]
        query = [(k, v) for k, v in request.query_params.multi_items() if k != "key"]
        # As bytes: Starlette decoded them as latin-1, and httpx would refuse (500) any non-ASCII
        # value given back as str.
        headers = [
            (k.encode("latin-1"), v.encode("latin-1"))
            for k, v in request.headers.items()
            if forwardable(k)
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
        sent = time.perf_counter()
        try:
            resp = await client.send(upstream, stream=True)
        except httpx.TimeoutException as e:
            self._record_failure(call, 504, e, price)
            raise UpstreamTimeout(f"The provider did not answer in time ({type(e).__name__})") from e
        except httpx.HTTPError as e:
            self._record_failure(call, 502, e, price)
            raise UpstreamError(f"Could not reach the provider ({type(e).__name__})") from e
        log_request(ttfb_ms=round((time.perf_counter() - sent) * 1000, 2))  # log line, /metrics
        return resp

    def _record_failure(
        self, call: Call | None, status: int, error: httpx.HTTPError, price: Price | None
    ) -> None:
        if call is None:
            return
        if isinstance(
            error, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout | httpx.ProxyError
        ):
            # Nothing reached the provider (an egress proxy refusing CONNECT included): nothing to pay.
            record(self.store, call, status, "broken", None, Decimal(0), "free")
        elif call.endpoint.kind == "free":
            record(self.store, call, status, "broken", None, Decimal(0), "free")
        else:
            # The prompt was sent and may be billed even though no answer came: charge it.
            record(self.store, call, status, "broken", None, estimate(call, price, 0), "estimated")


def _unpriced(provider: Provider, call: Call) -> RelayError:
    """The error for a call the relay cannot price, so cannot bound: refused before forwarding."""
    if provider.priced_by_table or not call.model:
        return BadRequest(
            f"Model {call.model or '(none)'} has no price on this relay, so it cannot be "
            "budgeted; ask the operator to add it to the price table",
            code="model_not_priced",
        )
    return ServiceUnavailable(
        f"{provider.route}'s model prices could not be fetched, so the call cannot be "
        "budgeted; try again shortly",
        code="prices_unavailable",
    )
