"""The app factory: one route table, read top to bottom; resources opened in the lifespan."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from relay.auth.google import GoogleVerifier
from relay.auth.tokens import TokenVerifier
from relay.costing.budget import Budgets
from relay.costing.pricing import PriceTable
from relay.edge import Edge, InFlight
from relay.errors import RelayError, error_response
from relay.forward.proxy import Relay
from relay.forwarded import TrustedProxies
from relay.live_policy import LivePolicy
from relay.metrics import Meter
from relay.providers.demo_model import DEMO_KEY, DemoTransport
from relay.providers.http1 import Http1Transport, LeanClient
from relay.routes import admin, auth, health, metrics, prices, usage
from relay.routes.pages import page_routes
from relay.routes.similarity import similarity
from relay.routes.webproxy import Resolver, system_resolve, web_proxy
from relay.settings import Settings
from relay.store import LedgerError, Store

log = logging.getLogger("aipipe")


def create_app(
    settings: Settings,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    resolver: Resolver = system_resolve,
    on_ready: Callable[[], None] | None = None,
) -> Starlette:
    """`transport` replaces the network for upstream calls (tests pass a fake upstream's);
    `resolver` the DNS look-ups of /proxy (tests pass a stand-in; its address checks still
    run); `on_ready` runs once the relay owns its database (`serve` then records where it runs)."""
    inflight = InFlight()
    meter = Meter()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        policy = LivePolicy.start(settings)
        store, budgets = await open_store(settings, policy)
        if isinstance(store, Store):  # a reloaded, longer budget window: the mirror reads back
            policy.listeners.append(lambda new: store.widen(new.longest_window()))
        timeout = httpx.Timeout(
            connect=settings.upstream_timeout,
            read=settings.stream_idle_timeout,
            write=settings.stream_idle_timeout,
            pool=settings.upstream_timeout,
        )
        limits = httpx.Limits(max_connections=1000, max_keepalive_connections=200)
        # `http` serves /proxy only, always direct (never through an egress proxy: its SSRF
        # check vets the address it connects to; see docs/deployment.md). trust_env=False: the
        # proxy variables are read by relay.settings, not by httpx behind its back.
        http = httpx.AsyncClient(
            transport=transport or httpx.AsyncHTTPTransport(verify=httpx.create_ssl_context(), limits=limits),
            timeout=timeout,
            trust_env=False,
        )
        # Provider calls (the hot path) use the lean HTTP/1.1 transport — httpx's default pool
        # costs more CPU than the rest of a relayed call — through the egress proxy if one is
        # set. Google's certs are fetched the same way.
        upstream = http
        if transport is None:
            upstream = LeanClient(Http1Transport(egress=settings.egress), timeout=timeout)
        clients = {"default": upstream}
        keys = dict(settings.provider_keys)
        demo: httpx.AsyncClient | None = None
        if settings.dev and "openai" not in keys:
            # --dev with no OpenAI key: a clearly labelled built-in model answers /openai.
            demo = httpx.AsyncClient(transport=DemoTransport(), timeout=timeout)
            clients["openai"] = demo
            keys["openai"] = DEMO_KEY
        state = app.state
        state.settings = settings
        state.policy = policy
        state.store = store
        state.http = http
        state.resolver = resolver
        state.budgets = budgets
        state.inflight = inflight
        state.meter = meter
        state.metrics_registry = metrics.registry_for(state)
        state.verifier = TokenVerifier(settings, policy)
        state.google = GoogleVerifier(settings.google_client_id, settings.google_certs_url, upstream)
        state.relay = Relay(
            settings, store, state.budgets, PriceTable.load(), state.verifier, clients, keys
        )
        # Everything built so far lives as long as the app: keep the cyclic GC from re-scanning
        # it, and let it run less often (requests make short-lived garbage, rarely cycles).
        if on_ready is not None:
            on_ready()
        gc.collect()
        gc.freeze()
        gc.set_threshold(20_000, 50, 100)
        try:
            with reload_on_sighup(policy):
                yield
        finally:
            # uvicorn cancels what outlived the grace period and, without waiting, shuts us
            # down: let those requests run their `finally` (which records their cost) first.
            await inflight.idle(timeout=5)
            await http.aclose()
            if upstream is not http:
                await upstream.aclose()
            if demo is not None:
                await demo.aclose()
            await store.aclose()

    routes: list[BaseRoute] = [
        *health.routes,
        *metrics.routes,
        *auth.routes,
        *usage.routes,
        *admin.routes,
        *prices.routes,
        Route("/similarity", similarity, methods=["POST"]),
        Route("/proxy/{url:path}", web_proxy, methods=["GET", "POST", "HEAD"]),
        *page_routes(settings),
        Route("/{provider}/{path:path}", provider_route, methods=ALL_METHODS),
        Route("/{provider}", provider_route, methods=ALL_METHODS),
    ]
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={  # type: ignore[dict-item]
            RelayError: relay_error,
            HTTPException: http_error,
            RecursionError: too_deep,
            LedgerError: store_failed,
        },
    )
    app.add_middleware(
        Edge,
        starlette=app,
        max_bytes=settings.max_body_bytes,
        inflight=inflight,
        meter=meter,
        trusted=TrustedProxies(settings.trusted_proxies),
    )
    return app


@contextlib.contextmanager
def reload_on_sighup(policy: LivePolicy) -> Iterator[None]:
    """While the app runs, SIGHUP reloads the policy file — off the event loop (a longer budget
    window makes the store read older days), so requests keep flowing meanwhile. Signal handlers
    belong to the main thread: an app run elsewhere (a test's TestClient) calls reload() itself."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    loop = asyncio.get_running_loop()
    lock = threading.Lock()  # two quick SIGHUPs: one reload after the other

    def reload() -> None:
        with lock:
            policy.reload()

    loop.add_signal_handler(signal.SIGHUP, lambda: loop.run_in_executor(None, reload))
    try:
        yield
    finally:
        loop.remove_signal_handler(signal.SIGHUP)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)  # a reload while stopping must not kill it


async def open_store(settings: Settings, policy: LivePolicy) -> tuple[Any, Any]:
    """The DuckDB file with in-process budgets, or (AIPIPE_DATABASE_URL) PostgreSQL with budgets
    decided in the database, shared with every other relay process on it."""
    if settings.database_url:
        from relay.costing.shared_budget import SharedBudgets  # imports asyncpg: only then
        from relay.store.postgres import PgStore

        shared = await PgStore(
            settings.database_url,
            flush_seconds=settings.flush_seconds,
            pool_size=settings.database_pool,
            lease=settings.lease_seconds,
        ).open()
        return shared, SharedBudgets(policy, shared)
    store = Store(
        settings.db_path,
        flush_seconds=settings.flush_seconds,
        mirror_days=policy.longest_window(),
        worker_idle=settings.store_idle,
    ).open()
    return store, Budgets(policy, store)


ALL_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"]


async def provider_route(request: Request) -> Response:
    return await request.app.state.relay(request)


async def relay_error(request: Request, exc: RelayError) -> Response:
    return exc.response()


async def http_error(request: Request, exc: HTTPException) -> Response:
    codes = {404: "not_found", 405: "method_not_allowed"}
    return error_response(
        exc.status_code,
        str(exc.detail),
        "invalid_request_error",
        codes.get(exc.status_code, "http_error"),
        dict(exc.headers or {}),
    )


async def store_failed(request: Request, exc: LedgerError) -> Response:
    # A usage or admin read while the database is away (the PostgreSQL store), or a failed query.
    return error_response(
        503, f"The usage database is unavailable: {exc}", "server_error", "store_unavailable"
    )


async def too_deep(request: Request, exc: RecursionError) -> Response:
    # Only a hostile body gets here: json.loads of `[[[[…` nested thousands deep.
    return error_response(400, "Request body is nested too deeply", "invalid_request_error", "invalid_json")
