"""GET /healthz: whether the relay can record what it serves, and what it is holding."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from relay import __version__


async def healthz(request: Request) -> JSONResponse:
    store = request.app.state.store
    # The PostgreSQL store also says when the database cannot be reached (budgeted calls are
    # refused meanwhile); the DuckDB store has no such state.
    database_error = getattr(store, "database_error", None)
    healthy = store.last_flush_error is None and database_error is None
    return JSONResponse(
        {
            "ok": healthy,
            "version": __version__,
            "pending_rows": store.pending(),
            "dropped_rows": getattr(store, "dropped_rows", 0),
            "rows_written": store.rows_written,
            "last_flush_error": store.last_flush_error,
            "database_error": database_error,
            "store": store.worker(),
            "requests_in_flight": request.app.state.inflight.count - 1,  # not counting this one
            "reserved_usd": str(request.app.state.budgets.reserved()),
            "policy": request.app.state.policy.describe(),
        },
        status_code=200 if healthy else 503,
    )


routes = [Route("/healthz", healthz, methods=["GET"])]
