"""Admin endpoints: usage of everyone, spend by group, minting tokens, correcting a day's cost,
the ledger export."""

from __future__ import annotations

import json
import tempfile
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path

from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse
from starlette.routing import Route

from relay.auth.access import require_admin
from relay.auth.tokens import issue_token
from relay.clock import utc_today
from relay.errors import BadRequest
from relay.routes.params import int_param, looks_like_email

MAX_COST = Decimal(1_000_000)
SPEND_GROUPS = ("provider", "model", "email")  # ledger column names: safe to place in the SQL
SPEND_DAYS = 30  # default /admin/spend window: since 30 days ago


async def admin_usage(request: Request) -> JSONResponse:
    """Per-day cost per email, newest first. Filters: email, since, until (ISO dates);
    paging: limit (default 1000, max 10000), offset."""
    require_admin(request)
    where, params = [], []
    if email := request.query_params.get("email"):
        where.append("email = ?")
        params.append(email.lower())
    for name, op in (("since", ">="), ("until", "<=")):
        if raw := request.query_params.get(name):
            where.append(f"date {op} ?")
            params.append(_date(raw, name))
    limit = int_param(request, "limit", 1000, 1, 10000)
    offset = int_param(request, "offset", 0, 0, 10**9)
    clause = f"WHERE {' AND '.join(where)}" if where else ""
    rows = await request.app.state.store.read(
        f"SELECT email, date, cost FROM daily {clause} ORDER BY date DESC, email LIMIT ? OFFSET ?",
        [*params, limit, offset],
    )
    data = [{"email": e, "date": d.isoformat(), "cost": float(c)} for e, d, c in rows]
    return JSONResponse({"data": data, "limit": limit, "offset": offset})


async def admin_users(request: Request) -> JSONResponse:
    """Every user seen in the ledger or the day totals: spend in their budget window, limit,
    window days, request counts (window and all time), last request time. `?q=` filters by text."""
    require_admin(request)
    store = request.app.state.store
    q = request.query_params.get("q", "").strip().lower()
    rows = await store.read(
        "SELECT email, count(*), max(ts), min(date) FROM requests GROUP BY email"
    )
    seen = {email: (count, last) for email, count, last, _ in rows}
    daily = await store.read("SELECT DISTINCT email FROM daily")
    emails = sorted(set(seen) | {e for (e,) in daily})
    budgets = request.app.state.budgets
    users = []
    for email in emails:
        if q and q not in email:
            continue
        budget, spent = await budgets.standing(email)
        count, last = seen.get(email, (0, None))
        users.append(
            {
                "email": email,
                "spend": float(spent),
                "limit": float(budget.limit),
                "days": budget.days,
                "requests": count,
                "last": last.isoformat() + "Z" if last else None,
                "admin": request.app.state.policy.is_admin(email),
            }
        )
    return JSONResponse({"data": users})


async def admin_spend(request: Request) -> JSONResponse:
    """Everyone's ledger cost and request count per day and provider, model or email — what the
    admin chart needs, without downloading the ledger. `since` defaults to 30 days ago, `until`
    to no bound. `totals` adds the per-day costs budgets use, which an admin may have overwritten
    (so they can differ from the ledger)."""
    require_admin(request)
    group = request.query_params.get("group", "provider")
    if group not in SPEND_GROUPS:
        raise BadRequest("group must be provider, model or email", code="invalid_group")
    raw_since, raw_until = request.query_params.get("since"), request.query_params.get("until")
    since = _date(raw_since, "since") if raw_since else utc_today() - timedelta(days=SPEND_DAYS)
    until = _date(raw_until, "until") if raw_until else date.max
    if until < since:
        raise BadRequest("until must not be before since", code="invalid_date")
    store = request.app.state.store
    rows = await store.read(
        f"SELECT date, {group}, sum(cost), count(*) FROM requests WHERE date >= ? AND date <= ? "
        f"GROUP BY date, {group} ORDER BY date, {group}",
        [since, until],
    )
    totals = await store.read(
        "SELECT date, sum(cost) FROM daily WHERE date >= ? AND date <= ? GROUP BY date ORDER BY date",
        [since, until],
    )
    return JSONResponse(
        {
            "group": group,
            "since": since.isoformat(),
            "data": [
                {"date": d.isoformat(), "key": k, "cost": float(c), "requests": n}
                for d, k, c, n in rows
            ],
            "totals": [{"date": d.isoformat(), "cost": float(c)} for d, c in totals],
        }
    )


async def admin_token(request: Request) -> JSONResponse:
    require_admin(request)
    email = request.query_params.get("email", "")
    if not looks_like_email(email):
        raise BadRequest("email must be a valid email address", code="invalid_email")
    state = request.app.state
    return JSONResponse(
        {
            "token": issue_token(state.settings, email, policy=state.policy),
            "email": email.strip().lower(),
        },
        headers={"cache-control": "no-store"},
    )


async def admin_cost(request: Request) -> JSONResponse:
    """Overwrite one day's cost for one email."""
    require_admin(request)
    try:
        body = json.loads(await request.body() or b"null", parse_float=Decimal)
    except (ValueError, UnicodeDecodeError) as e:
        raise BadRequest("Body must be JSON: {email, date, cost}", code="invalid_json") from e
    if not isinstance(body, dict):
        raise BadRequest("Body must be a JSON object: {email, date, cost}", code="invalid_json")
    email, day, cost = body.get("email"), body.get("date"), body.get("cost")
    if not isinstance(email, str) or not looks_like_email(email):
        raise BadRequest("email must be a valid email address", code="invalid_email")
    if not isinstance(day, str):
        raise BadRequest("date must be a YYYY-MM-DD string", code="invalid_date")
    parsed_day = _date(day, "date")
    amount = _cost(cost)
    await request.app.state.store.set_day(email, parsed_day, amount)
    return JSONResponse(
        {"message": f"Cost for {email.strip().lower()} on {parsed_day.isoformat()} set to {cost}"}
    )


async def admin_export(request: Request) -> FileResponse:
    """The ledger as a Parquet (default) or CSV file."""
    require_admin(request)
    fmt = request.query_params.get("format", "parquet")
    if fmt not in ("parquet", "csv"):
        raise BadRequest("format must be parquet or csv", code="invalid_format")
    folder = Path(tempfile.mkdtemp(prefix="aipipe-export-"))
    out = folder / f"aipipe-ledger.{fmt}"
    await request.app.state.store.export_file(out, fmt)
    media = "application/vnd.apache.parquet" if fmt == "parquet" else "text/csv"
    return FileResponse(
        out,
        media_type=media,
        filename=out.name,
        background=BackgroundTask(_remove, folder),
    )


def _remove(folder: Path) -> None:
    for child in folder.iterdir():
        child.unlink()
    folder.rmdir()


def _date(raw: str, name: str) -> date:
    try:
        return date.fromisoformat(raw)
    except ValueError as e:
        raise BadRequest(f"{name} must be a date like 2026-01-31", code="invalid_date") from e


def _cost(raw: object) -> Decimal:
    if isinstance(raw, bool) or not isinstance(raw, int | Decimal | str):
        raise BadRequest("cost must be a number of USD", code="invalid_cost")
    try:
        value = Decimal(raw) if not isinstance(raw, Decimal) else raw
    except InvalidOperation as e:
        raise BadRequest("cost must be a number of USD", code="invalid_cost") from e
    if not value.is_finite() or value < 0 or value > MAX_COST:
        raise BadRequest("cost must be a number from 0 to 1000000", code="invalid_cost")
    return value.quantize(Decimal("0.0000000001"))


routes = [
    Route("/admin/usage", admin_usage, methods=["GET"]),
    Route("/admin/users", admin_users, methods=["GET"]),
    Route("/admin/spend", admin_spend, methods=["GET"]),
    Route("/admin/token", admin_token, methods=["GET"]),
    Route("/admin/cost", admin_cost, methods=["POST"]),
    Route("/admin/export", admin_export, methods=["GET"]),
]
