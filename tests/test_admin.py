"""Admin endpoints and the user's own usage endpoint."""

from __future__ import annotations

import csv
import io
from datetime import date, timedelta
from decimal import Decimal

import duckdb
import pytest

from relay.clock import utc_today
from relay.store.migrations import LEDGER_COLUMNS
from tests.conftest import ADMIN, auth


def test_admin_cost_overwrites_and_usage_reflects_it(client, token) -> None:
    """POST /admin/cost sets a day's cost; /usage and /admin/usage show the new value."""
    today = utc_today().isoformat()
    r = client.post(
        "/admin/cost",
        json={"email": "student@example.com", "date": today, "cost": 0.25},
        headers=auth(token(ADMIN)),
    )
    assert r.status_code == 200, r.text
    assert r.json() == {"message": f"Cost for student@example.com on {today} set to 0.25"}
    mine = client.get("/usage", headers=auth(token())).json()
    assert mine["cost"] == 0.25 and mine["limit"] == 1.0 and mine["days"] == 7
    assert mine["usage"][-1] == {"date": today, "cost": 0.25}
    data = client.get("/admin/usage", headers=auth(token(ADMIN))).json()["data"]
    assert {"email": "student@example.com", "date": today, "cost": 0.25} in data
    # overwrite, not add
    client.post(
        "/admin/cost",
        json={"email": "student@example.com", "date": today, "cost": 0.1},
        headers=auth(token(ADMIN)),
    )
    assert client.get("/usage", headers=auth(token())).json()["cost"] == 0.1


def test_admin_cost_rejects_bad_input(client, token) -> None:
    """Bad email, date or cost: 400 and nothing changes."""
    today = utc_today().isoformat()
    for body in (
        {"email": "nope", "date": today, "cost": 1},
        {"email": "a@b.co", "date": "yesterday", "cost": 1},
        {"email": "a@b.co", "date": today, "cost": -1},
        {"email": "a@b.co", "date": today, "cost": "NaN"},
        {"email": "a@b.co", "date": today, "cost": True},
        {"email": "a@b.co", "date": today},
    ):
        r = client.post("/admin/cost", json=body, headers=auth(token(ADMIN)))
        assert r.status_code == 400, body
    assert client.get("/admin/usage", headers=auth(token(ADMIN))).json()["data"] == []


def test_admin_endpoints_refuse_non_admins(client, token) -> None:
    """Users get 403, provider keys 401."""
    for path in ("/admin/usage", "/admin/token?email=a@b.co", "/admin/export"):
        assert client.get(path, headers=auth(token())).status_code == 403
        assert client.get(path, headers=auth("sk-test-openai")).status_code == 401


def test_admin_usage_filters_and_pages(client, token) -> None:
    """Filter by email and dates; page with limit and offset; newest first."""
    today = utc_today()
    for i in range(5):
        day = (today - timedelta(days=i)).isoformat()
        client.post(
            "/admin/cost",
            json={"email": "u@x.org", "date": day, "cost": i + 1},
            headers=auth(token(ADMIN)),
        )
    client.post(
        "/admin/cost",
        json={"email": "v@x.org", "date": today.isoformat(), "cost": 9},
        headers=auth(token(ADMIN)),
    )
    got = client.get(
        "/admin/usage?email=u@x.org&limit=2&offset=1", headers=auth(token(ADMIN))
    ).json()["data"]
    assert [g["cost"] for g in got] == [2, 3]
    since = (today - timedelta(days=1)).isoformat()
    got = client.get(
        f"/admin/usage?since={since}&email=u@x.org", headers=auth(token(ADMIN))
    ).json()["data"]
    assert len(got) == 2
    assert client.get("/admin/usage?since=bad", headers=auth(token(ADMIN))).status_code == 400


def test_admin_token_mints_a_working_token(client, token) -> None:
    """/admin/token gives a token that the relay accepts for that email."""
    r = client.get("/admin/token?email=New@Example.com", headers=auth(token(ADMIN)))
    minted = r.json()["token"]
    assert client.get("/usage", headers=auth(minted)).json()["email"] == "new@example.com"
    assert client.get("/admin/token?email=bad", headers=auth(token(ADMIN))).status_code == 400


def test_export_returns_the_ledger(client, token, tmp_path) -> None:
    """/admin/export gives the ledger as Parquet or CSV while the relay runs."""
    client.post(
        "/openai/v1/chat/completions",
        json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]},
        headers=auth(token()),
    )
    r = client.get("/admin/export?format=parquet", headers=auth(token(ADMIN)))
    assert r.status_code == 200
    out = tmp_path / "e.parquet"
    out.write_bytes(r.content)
    rows = duckdb.sql(f"SELECT email, model, cost_source FROM '{out}'").fetchall()
    assert rows == [("student@example.com", "gpt-4o-mini", "computed")]
    csv_answer = client.get("/admin/export?format=csv", headers=auth(token(ADMIN)))
    [row] = list(csv.DictReader(io.StringIO(csv_answer.text)))
    assert list(row) == [name for name, _ in LEDGER_COLUMNS]
    [parquet_row] = duckdb.sql(f"SELECT * FROM '{out}'").fetchall()
    assert row["id"] == parquet_row[0] and len(row["id"]) == 32
    assert (row["email"], row["provider"], row["path"], row["model"]) == (
        "student@example.com", "openai", "/v1/chat/completions", "gpt-4o-mini")
    assert (row["status"], row["outcome"], row["cost_source"], row["streamed"]) == (
        "200", "ok", "computed", "false")
    assert (row["input_tokens"], row["output_tokens"]) == ("1", "5")  # the fake's usage
    assert Decimal(row["cost"]) == Decimal("0.00000315")  # 1 x $0.15/M + 5 x $0.60/M
    assert client.get("/admin/export?format=xml", headers=auth(token(ADMIN))).status_code == 400


@pytest.mark.parametrize("origin,model", [
    ("=HYPERLINK(\"http://evil.example\",\"click\")", "=cmd|' /C calc'!A0"),
    ("+1+1", "@SUM(A1:A9)"), ("-2+3", "\t=1"), ("\r=1", "-x"),
])
def test_csv_export_cells_never_run_as_formulas(client, token, origin, model) -> None:
    """A caller's Origin header or model name that starts like a spreadsheet formula is written
    to the CSV export as text (a leading apostrophe); Parquet keeps the value as it was."""
    r = client.post("/openrouter/v1/chat/completions", headers={**auth(token()), "origin": origin},
                    json={"model": model, "messages": [{"role": "user", "content": "hi"}]})
    assert r.status_code == 200, r.text
    text = client.get("/admin/export?format=csv", headers=auth(token(ADMIN))).text
    [row] = list(csv.DictReader(io.StringIO(text)))
    assert (row["origin"], row["model"]) == ("'" + origin, "'" + model)
    for cell in row.values():
        assert not cell or cell[0] not in "=+-@\t\r", cell


def test_recent_requests_are_the_callers_own(client, token) -> None:
    """/usage/requests lists only the caller's requests, newest first."""
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
    client.post("/openai/v1/chat/completions", json=body, headers=auth(token()))
    client.post(
        "/openai/v1/embeddings",
        json={"model": "text-embedding-3-small", "input": "x"},
        headers=auth(token()),
    )
    client.post("/openai/v1/chat/completions", json=body, headers=auth(token("other@example.com")))
    data = client.get("/usage/requests", headers=auth(token())).json()["data"]
    assert [d["path"] for d in data] == ["/v1/embeddings", "/v1/chat/completions"]
    assert all("email" not in d for d in data)
    assert data[0]["cost_source"] == "computed"
    assert date.fromisoformat(data[0]["date"]) == utc_today()


def test_admin_users_lists_spend_limit_and_counts(client, token) -> None:
    """/admin/users gives each user's window spend, limit and request count; q filters."""
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
    client.post("/openai/v1/chat/completions", json=body, headers=auth(token()))
    client.post("/openai/v1/chat/completions", json=body, headers=auth(token()))
    client.post("/openai/v1/chat/completions", json=body, headers=auth(token("x@other.org")))
    users = {u["email"]: u for u in client.get("/admin/users", headers=auth(token(ADMIN))).json()["data"]}
    assert users["student@example.com"]["requests"] == 2
    assert users["student@example.com"]["limit"] == 1.0
    assert users["student@example.com"]["spend"] > 0
    assert users["x@other.org"]["limit"] == 0.1
    only = client.get("/admin/users?q=other", headers=auth(token(ADMIN))).json()["data"]
    assert [u["email"] for u in only] == ["x@other.org"]
    assert client.get("/admin/users", headers=auth(token())).status_code == 403


def test_prices_are_public(client) -> None:
    """/prices lists the price table with source and date per entry."""
    data = client.get("/prices").json()
    mini = data["openai"]["gpt-4o-mini"]
    assert mini["input"] > 0 and mini["output"] > 0 and mini["source"] and mini["date"]
    assert "gemini-2.5-flash" in data["gemini"]
