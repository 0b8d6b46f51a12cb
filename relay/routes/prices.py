"""`GET /prices`: the relay's price table, public, for model pickers and docs."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from relay.costing.pricing import PRICE_FIELDS


async def prices(request: Request) -> JSONResponse:
    """`{provider: {model: {field: USD, ..., source, date}}}`; token prices per 1M tokens."""
    table = request.app.state.relay.prices
    out: dict[str, dict[str, dict[str, object]]] = {}
    for provider, model, price in table.entries():
        entry: dict[str, object] = {
            name: float(getattr(price, name)) for name in PRICE_FIELDS if getattr(price, name) is not None
        }
        entry.update(source=price.source, date=price.date)
        out.setdefault(provider, {})[model] = entry
    return JSONResponse(out, headers={"cache-control": "public, max-age=3600"})


routes = [Route("/prices", prices, methods=["GET"])]
