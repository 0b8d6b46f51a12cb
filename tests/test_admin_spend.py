"""GET /admin/spend: everyone's ledger cost and request count per day, grouped by provider, model
or email (what the admin page's chart draws, without downloading the ledger)."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest

from relay.clock import utc_today
from relay.store import LedgerRow
from tests.conftest import ADMIN, auth
from tests.test_web_py_playground import _load

admin_view = _load("admin_view")


def row(day: date, email: str, provider: str, model: str, cost: str) -> LedgerRow:
    return LedgerRow(
        id=uuid.uuid4().hex, ts=datetime.combine(day, datetime.min.time()), date=day,
        email=email, provider=provider, path="/v1/chat/completions", model=model, status=200,
        outcome="ok", input_tokens=10, output_tokens=5, cached_tokens=0, reasoning_tokens=0,
        cost=Decimal(cost), cost_source="computed", latency_ms=1.0, streamed=False, origin="",
    )


@pytest.fixture
def ledger(client) -> list[LedgerRow]:
    """Rows on three days, two providers, three models and two users."""
    today = utc_today()
    rows = [
        row(today, "a@x.org", "openai", "gpt-4o-mini", "0.1000000001"),
        row(today, "a@x.org", "openai", "gpt-4o-mini", "0.2"),
        row(today, "b@x.org", "openai", "gpt-4.1-nano", "0.0000000003"),
        row(today, "b@x.org", "openrouter", "x/y", "1.5"),
        row(today - timedelta(days=1), "a@x.org", "openrouter", "x/y", "0.25"),
        row(today - timedelta(days=1), "b@x.org", "openrouter", "x/y", "0"),  # a free call counts
        row(today - timedelta(days=30), "a@x.org", "openai", "gpt-4o-mini", "3"),  # the first day
        row(today - timedelta(days=31), "a@x.org", "openai", "gpt-4o-mini", "7"),  # before it
    ]
    for item in rows:
        client.app.state.store.record(item)
    return rows


def spend(client, token, query: str = "", who: str = ADMIN):
    return client.get("/admin/spend" + query, headers=auth(token(who)))


def test_spend_by_provider_sums_cost_and_counts_requests(client, token, ledger) -> None:
    """Each (day, provider) gets the exact sum of its rows' cost and their count; the default
    window starts 30 days ago (a row 31 days old is left out)."""
    today = utc_today()
    r = spend(client, token, "?group=provider")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["group"] == "provider"
    assert body["since"] == (today - timedelta(days=30)).isoformat()
    assert body["data"] == [
        {"date": (today - timedelta(days=30)).isoformat(), "key": "openai", "cost": 3.0,
         "requests": 1},
        {"date": (today - timedelta(days=1)).isoformat(), "key": "openrouter", "cost": 0.25,
         "requests": 2},
        {"date": today.isoformat(), "key": "openai", "cost": 0.3000000004, "requests": 3},
        {"date": today.isoformat(), "key": "openrouter", "cost": 1.5, "requests": 1},
    ]
    assert spend(client, token).json()["group"] == "provider"  # the default group


def test_spend_by_model_and_by_email(client, token, ledger) -> None:
    """The same rows grouped by model and by user, summed exactly (no float drift)."""
    today = utc_today().isoformat()
    by_model = spend(client, token, f"?group=model&since={today}").json()["data"]
    assert by_model == [
        {"date": today, "key": "gpt-4.1-nano", "cost": 0.0000000003, "requests": 1},
        {"date": today, "key": "gpt-4o-mini", "cost": 0.3000000001, "requests": 2},
        {"date": today, "key": "x/y", "cost": 1.5, "requests": 1},
    ]
    by_email = spend(client, token, f"?group=email&since={today}").json()["data"]
    assert by_email == [
        {"date": today, "key": "a@x.org", "cost": 0.3000000001, "requests": 2},
        {"date": today, "key": "b@x.org", "cost": 1.5000000003, "requests": 2},
    ]


def test_since_and_until_bound_the_dates(client, token, ledger) -> None:
    """since and until are inclusive; a window with no rows is an empty list, not an error."""
    today = utc_today()
    yesterday = (today - timedelta(days=1)).isoformat()
    data = spend(client, token, f"?since={yesterday}&until={yesterday}").json()["data"]
    assert data == [{"date": yesterday, "key": "openrouter", "cost": 0.25, "requests": 2}]
    old = (today - timedelta(days=31)).isoformat()
    data = spend(client, token, f"?group=email&since={old}&until={old}").json()["data"]
    assert data == [{"date": old, "key": "a@x.org", "cost": 7.0, "requests": 1}]
    assert spend(client, token, "?since=2000-01-01&until=2000-01-31").json()["data"] == []


def test_totals_are_the_day_costs_budgets_use(client, token, ledger) -> None:
    """`totals` follows the per-day costs, so an admin's overwrite shows up there while the
    ledger rows stay as they were (the page draws the difference as "(other)")."""
    today = utc_today().isoformat()
    r = client.post("/admin/cost", json={"email": "c@x.org", "date": today, "cost": "2"},
                    headers=auth(token(ADMIN)))
    assert r.status_code == 200, r.text
    body = spend(client, token, f"?since={today}").json()
    assert body["totals"] == [{"date": today, "cost": 3.8000000004}]
    assert sum(item["cost"] for item in body["data"]) == pytest.approx(1.8000000004)


def test_a_proxied_call_is_counted_at_its_recorded_cost(client, token) -> None:
    """A real chat through the relay and the fake upstream shows up under its provider and
    model with the cost the relay reported for it."""
    r = client.post("/openai/v1/chat/completions", headers=auth(token("c@x.org")),
                    json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hi"}]})
    assert r.status_code == 200, r.text
    cost = float(r.headers["x-aipipe-cost"])
    assert cost > 0
    data = spend(client, token, "?group=model").json()["data"]
    assert data == [{"date": utc_today().isoformat(), "key": "gpt-4o-mini", "cost": cost,
                     "requests": 1}]


@pytest.mark.parametrize(("query", "code"), [
    ("?group=path", "invalid_group"),
    ("?group=provider;DROP%20TABLE%20requests", "invalid_group"),
    ("?since=yesterday", "invalid_date"),
    ("?since=2026-02-30", "invalid_date"),
    ("?until=31/01/2026", "invalid_date"),
    ("?since=2026-02-02&until=2026-02-01", "invalid_date"),
])
def test_bad_input_is_a_400_in_the_relay_envelope(client, token, query: str, code: str) -> None:
    """A group that is not a ledger column or a malformed or reversed date range is refused with
    the relay's one error shape, never passed to the SQL."""
    r = spend(client, token, query)
    assert r.status_code == 400, r.text
    body = r.json()
    assert body["error"]["code"] == code and body["error"]["type"] == "invalid_request_error"
    assert body["message"] == body["error"]["message"]


def test_non_admins_are_refused(client, token, ledger) -> None:
    """Users get 403, provider keys and no token 401; nothing of the ledger leaks."""
    r = spend(client, token, who="student@example.com")
    assert r.status_code == 403 and "data" not in r.json()
    assert client.get("/admin/spend", headers=auth("sk-test-openai")).status_code == 401
    assert client.get("/admin/spend").status_code == 401


def test_the_page_chart_from_spend_matches_the_chart_from_the_export(client, token,
                                                                     ledger) -> None:
    """The admin page's chart rows built from /admin/spend equal those built from every row of
    the ledger's CSV export and the per-day totals of /admin/usage, for every grouping (the
    switch keeps what the chart shows)."""
    today = utc_today()
    since = (today - timedelta(days=29)).isoformat()
    headers = auth(token(ADMIN))
    client.post("/admin/cost", json={"email": "a@x.org", "date": since, "cost": "0.5"},
                headers=headers)  # an overwritten day without ledger rows: "(other)"
    csv_text = client.get("/admin/export?format=csv", headers=headers).text
    records = list(csv.DictReader(io.StringIO(csv_text)))
    daily = client.get(f"/admin/usage?since={since}", headers=headers).json()["data"]
    for group in ("provider", "model", "email"):
        body = spend(client, token, f"?group={group}&since={since}").json()
        from_spend = admin_view.chart_rows(body["data"], body["totals"], since,
                                           today.isoformat(), group)
        items = [{"date": r["date"], "key": r[group], "cost": r["cost"]} for r in records]
        from_export = admin_view.chart_rows(items, daily, since, today.isoformat(), group)
        assert from_spend == from_export
        assert any(r[group] == "(other)" for r in from_spend)
