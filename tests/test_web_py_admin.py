"""The admin page's pure module under CPython: web/py/admin_view.py (users table, overview,
spend chart rows, form checks)."""

from __future__ import annotations

from tests.test_web_py_playground import _load

admin_view = _load("admin_view")

USERS = [
    {"email": "b@x.org", "spend": 0.5, "limit": 1.0, "days": 7, "requests": 3,
     "last": "2026-03-10T08:00:00Z", "admin": False},
    {"email": "a@x.org", "spend": 0.05, "limit": 0.1, "days": 7, "requests": 10, "last": None,
     "admin": True},
    {"email": "c@y.org", "spend": 0.5, "limit": 1.0, "days": 30, "requests": 0, "last": None,
     "admin": False},
]


def emails(users: list[dict]) -> list[str]:
    return [u["email"] for u in users]


def test_sort_users_by_any_column_both_ways() -> None:
    """Numbers sort as numbers (ties by email), text as text, and users with no value
    (never made a request) stay at the end either way."""
    assert emails(admin_view.sort_users(USERS, "spend", True)) == ["c@y.org", "b@x.org", "a@x.org"]
    assert emails(admin_view.sort_users(USERS, "spend")) == ["a@x.org", "b@x.org", "c@y.org"]
    assert emails(admin_view.sort_users(USERS, "requests", True)) == ["a@x.org", "b@x.org", "c@y.org"]
    assert emails(admin_view.sort_users(USERS, "email")) == ["a@x.org", "b@x.org", "c@y.org"]
    assert emails(admin_view.sort_users(USERS, "last", True))[0] == "b@x.org"
    assert emails(admin_view.sort_users(USERS, "last"))[0] == "b@x.org"
    assert emails(admin_view.sort_users(USERS, "admin", True))[0] == "a@x.org"


def test_filter_and_rows() -> None:
    """Search matches every word in the email; a row shows spend with its share of the limit."""
    assert emails(admin_view.filter_users(USERS, "X.ORG b")) == ["b@x.org"]
    assert len(admin_view.filter_users(USERS, "")) == 3
    assert admin_view.user_row(USERS[0]) == [
        "b@x.org", "$0.50 (50%)", "$1.00", "7 days", "3", "Mar 10, 08:00:00", "user"]
    assert admin_view.user_row(USERS[1])[5:] == ["never", "admin"]  # the Role column is never empty


def test_chart_rows_by_provider() -> None:
    """Everyone's spend per day is split by provider (/admin/spend's items); the per-day totals
    the budgets use (which an admin may have overwritten) decide each bar's height."""
    records = [{"date": "2026-03-09", "key": "openai", "cost": 0.25, "requests": 1},
               {"date": "2026-03-10", "key": "openrouter", "cost": 0.5, "requests": 1},
               {"date": "2026-03-10", "key": "openai", "cost": 0.125, "requests": 1}]
    daily = [{"email": "a@x.org", "date": "2026-03-09", "cost": 0.25},
             {"email": "b@x.org", "date": "2026-03-10", "cost": 0.625},
             {"email": "c@x.org", "date": "2026-03-10", "cost": 1.0}]  # set by an admin
    rows = admin_view.chart_rows(records, daily, "2026-03-09", "2026-03-10", "provider")
    assert [(r["date"], r["provider"], r["cost"]) for r in rows] == [
        ("2026-03-09", "openai", 0.25),
        ("2026-03-10", "(other)", 1.0),
        ("2026-03-10", "openai", 0.125),
        ("2026-03-10", "openrouter", 0.5)]
    spec = admin_view.chart_spec(records, daily, "2026-03-09", "2026-03-10", "model")
    assert spec["data"][0]["transform"][0]["expr"] == "datum['model']"
    assert spec["description"].startswith("Spend by day over the last 2 days, by model: $1.875")


def spend_items(per_user: dict[str, float], days: list[str]) -> list[dict]:
    return [{"date": d, "key": email, "cost": cost, "requests": 1}
            for d in days for email, cost in per_user.items()]


def test_chart_by_user_shows_the_top_users_and_one_series_for_the_rest() -> None:
    """On a large install the chart by user names the 7 biggest spenders and folds the other 33
    into one "33 more users" series per day — each day still totals the same."""
    days = ["2026-03-09", "2026-03-10"]
    per_user = {f"u{i:02d}@school.example": (i + 1) / 100 for i in range(40)}
    items = spend_items(per_user, days)
    daily = [{"date": d, "cost": sum(per_user.values())} for d in days]
    rows = admin_view.chart_rows(items, daily, "2026-03-09", "2026-03-10", "email")
    keys = {r["email"] for r in rows}
    assert keys == {f"u{i:02d}@school.example" for i in range(33, 40)} | {"33 more users"}
    for day in days:
        assert sum(r["pico"] for r in rows if r["date"] == day) == sum(
            round(c * 10**12) for c in per_user.values())
    spec = admin_view.chart_spec(items, daily, "2026-03-09", "2026-03-10", "email")
    colour = next(scale for scale in spec["scales"] if scale["name"] == "colour")
    assert colour["domain"][0] == "u39@school.example" and colour["domain"][-1] == "33 more users"
    assert len(colour["range"]) == 8


def test_overview_top_users_and_top_models() -> None:
    """The figures an admin sees first: spend from the per-day totals, requests, users, who is
    at their limit; the biggest spenders with their share of their limit; the biggest models
    with their request counts, bars relative to the first."""
    users = [*USERS, {"email": "d@y.org", "spend": 1.0, "limit": 1.0, "days": 7, "requests": 2}]
    items = [{"date": "2026-03-10", "key": "gpt-4o-mini", "cost": 0.3, "requests": 4},
             {"date": "2026-03-09", "key": "gpt-4o-mini", "cost": 0.1, "requests": 1},
             {"date": "2026-03-10", "key": "claude", "cost": 0.2, "requests": 2},
             {"date": "2026-03-10", "key": "free-model", "cost": 0, "requests": 9}]
    daily = [{"date": "2026-03-09", "cost": 0.1}, {"date": "2026-03-10", "cost": 0.55}]
    assert admin_view.overview(users, items, daily) == {
        "spend": "$0.65", "requests": "16", "users": "4", "over": "1"}
    assert admin_view.top_users(users, 2) == [("d@y.org", "$1.00 · 100% of $1.00", 100),
                                             ("b@x.org", "$0.50 · 50% of $1.00", 50)]
    assert admin_view.top_keys(items) == [("gpt-4o-mini", "$0.40 · 5 requests", 100),
                                          ("claude", "$0.20 · 2 requests", 50)]
    assert admin_view.top_users([{"email": "z@x", "spend": 0, "limit": 1}]) == []


def test_cost_form_checks_before_sending() -> None:
    """The overwrite form sends the cost as text (exact) and explains bad input."""
    assert admin_view.cost_form(" A@x.org ", "2026-03-10", " 0.25 ") == (
        {"email": "A@x.org", "date": "2026-03-10", "cost": "0.25"}, None)
    assert admin_view.cost_form("nobody", "2026-03-10", "1")[1] == "Enter the user's email address."
    assert admin_view.cost_form("a@x.org", "10/03/2026", "1")[1] == "Enter the date as YYYY-MM-DD."
    assert admin_view.cost_form("a@x.org", "03/10/2026", "1")[1] == "Enter the date as YYYY-MM-DD."
    for bad in ("", "-1", "1e3", "abc"):
        assert admin_view.cost_form("a@x.org", "2026-03-10", bad)[0] is None
    assert "at most" in admin_view.cost_form("a@x.org", "2026-03-10", "1000001")[1]
    assert admin_view.export_name("csv", "2026-03-10") == "aipipe-ledger-2026-03-10.csv"
