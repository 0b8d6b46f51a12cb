"""A user's own usage: `/usage` (budget window) and `/usage/requests` (recent calls)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from relay.auth.access import require_user
from relay.routes.params import int_param
from relay.store import COLUMN_NAMES


async def usage(request: Request) -> JSONResponse:
    email = require_user(request)
    budgets = request.app.state.budgets
    budget, spent = await budgets.standing(email)
    days = await budgets.day_costs(email, budget.days)
    return JSONResponse(
        {
            "email": email,
            "days": budget.days,
            "cost": float(spent),
            "usage": [{"date": d.isoformat(), "cost": float(c)} for d, c in days],
            "limit": float(budget.limit),
            "remaining": float(max(budget.limit - spent, 0)),
            # Pages show the Admin link from this (asking /admin/* would log a 403 for others).
            "admin": request.app.state.policy.is_admin(email),
        }
    )


async def recent_requests(request: Request) -> JSONResponse:
    """The caller's most recent requests, newest first (`?limit=`, at most 500)."""
    email = require_user(request)
    limit = int_param(request, "limit", 50, 1, 500)
    rows = await request.app.state.store.read(
        f"SELECT {', '.join(COLUMN_NAMES)} FROM requests WHERE email = ? ORDER BY ts DESC LIMIT ?",
        [email, limit],
    )
    return JSONResponse({"data": [_row_json(r) for r in rows]})


def _row_json(row: tuple) -> dict:
    out = dict(zip(COLUMN_NAMES, row, strict=True))
    out["ts"] = out["ts"].isoformat() + "Z"
    out["date"] = out["date"].isoformat()
    out["cost"] = float(out["cost"])
    out.pop("email", None)
    return out


routes = [
    Route("/usage", usage, methods=["GET"]),
    Route("/usage/requests", recent_requests, methods=["GET"]),
]
