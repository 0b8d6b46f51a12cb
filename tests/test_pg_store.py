"""The PostgreSQL store, in process against a real server: budgets decided in the database hold
for concurrent calls and across relays sharing it, reservations expire with their lease, the
schema migrates once when relays start together, admin overwrites and exports work."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from relay.app import create_app
from relay.auth.tokens import issue_token
from relay.clock import utc_today
from relay.policy import parse_policy
from relay.store.migrations import MIGRATIONS
from relay.store.pg_schema import migrate
from relay.store.postgres import PgStore
from testkit.fakes.server import serve_asgi
from testkit.fakes.upstream import create_fake_upstream
from tests.conftest import ADMIN, auth, make_settings, provider_part
from tests.test_budget_concurrency import LIMIT, LIMITED, TIGHT, TIGHT_POLICY, _parallel

STREAM = {
    "model": "anthropic/claude-3.5-haiku",
    "stream": True,
    "max_tokens": 99,
    "messages": [{"role": "user", "content": "count to a hundred please"}],
}
SLOW = {"x-fake": "slow", "x-fake-delay": "5", "x-fake-chunks": "99"}


async def _scalar(url: str, sql: str, *args: Any) -> Any:
    con = await asyncpg.connect(url)
    try:
        return await con.fetchval(sql, *args)
    finally:
        await con.close()


def scalar(url: str, sql: str, *args: Any) -> Any:
    return asyncio.run(_scalar(url, sql, *args))


def test_migrations_run_once_when_relays_start_together(pg_url: str) -> None:
    """Five stores opening a fresh database at the same moment: every migration is applied exactly
    once (the advisory lock serialises them), and none is left to apply afterwards."""

    async def main() -> list[int]:
        stores = await asyncio.gather(*(PgStore(pg_url).open(background=False) for _ in range(5)))
        for store in stores:
            await store.aclose()
        con = await asyncpg.connect(pg_url)
        try:
            assert await migrate(con) == []
            return [r[0] for r in await con.fetch("SELECT version FROM schema_migrations ORDER BY 1")]
        finally:
            await con.close()

    assert asyncio.run(main()) == [m.version for m in MIGRATIONS]


def test_thirty_parallel_streams_hold_the_budget(tmp_path: Path, pg_url: str) -> None:
    """30 parallel streams worth $0.0004 each against a $0.002 budget, decided in PostgreSQL: spend
    stays within the limit, the ledger and the day totals agree, nothing stays held."""
    upstream = create_fake_upstream()
    with serve_asgi(upstream) as up:
        settings = make_settings(
            tmp_path, base=up, policy=parse_policy(TIGHT_POLICY), database_url=pg_url
        )
        app = create_app(settings)
        with serve_asgi(app) as relay:
            headers = {**auth(issue_token(settings, TIGHT)), **SLOW}
            results = asyncio.run(
                _parallel(f"{relay}/openrouter/v1/chat/completions", STREAM, headers, 30)
            )
            assert app.state.budgets.reserved() == 0
    ok = [r for r in results if r[0] == 200]
    assert all(provider_part(text).endswith("data: [DONE]") for _, _, text, *_ in ok)
    assert all(status == 429 for status, *_ in results if status != 200)
    ledger = scalar(pg_url, "SELECT sum(cost) FROM requests WHERE email = $1 AND outcome = 'ok'", TIGHT)
    daily = scalar(pg_url, "SELECT sum(cost) FROM daily WHERE email = $1", TIGHT)
    served = sum(Decimal(str(b["cost"])) for b in upstream.state.billed)
    # As with DuckDB: four admitted in full, the fifth capped to what was left, never over.
    assert ledger == daily == served == Decimal("0.001992") and len(ok) == 5
    assert scalar(pg_url, "SELECT count(*) FROM holds") == 0


def test_two_relays_share_spend_rate_limit_and_overwrites(tmp_path: Path, pg_url: str) -> None:
    """Two relays on one database: a call through A shows in B's /usage at once; the rate limit
    (3 a minute) counts calls through both; an admin overwrite made on B binds admission on A."""
    with serve_asgi(create_fake_upstream()) as up:
        settings = make_settings(
            tmp_path, base=up, policy=parse_policy(TIGHT_POLICY), database_url=pg_url
        )
        with serve_asgi(create_app(settings)) as a, serve_asgi(create_app(settings)) as b:
            chat = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
            tight = auth(issue_token(settings, TIGHT))
            r = httpx.post(f"{a}/openai/v1/chat/completions", json=chat, headers=tight)
            assert r.status_code == 200, r.text
            cost = Decimal(r.headers["x-aipipe-cost"])
            assert cost > 0
            usage = httpx.get(f"{b}/usage", headers=tight).json()
            assert Decimal(str(usage["cost"])) == cost

            limited = auth(issue_token(settings, LIMITED))
            codes = [
                httpx.post(f"{url}/openai/v1/chat/completions", json=chat, headers=limited).status_code
                for url in (a, b, a, b)
            ]
            assert codes == [200, 200, 200, 429]

            admin = auth(issue_token(settings, ADMIN))
            body = {"email": TIGHT, "date": utc_today().isoformat(), "cost": str(LIMIT)}
            assert httpx.post(f"{b}/admin/cost", json=body, headers=admin).status_code == 200
            r = httpx.post(f"{a}/openai/v1/chat/completions", json=chat, headers=tight)
            assert r.status_code == 429 and r.json()["error"]["code"] == "insufficient_quota"


def test_a_dead_relays_reservation_lasts_only_its_lease(pg_url: str) -> None:
    """A relay that admitted a call and died (it never settles, never renews) holds the user's
    money only until its lease ends; a live relay's renewals keep its own holds."""
    today = utc_today()

    async def main() -> None:
        dead = await PgStore(pg_url, lease=1.0).open(background=False)
        live = await PgStore(pg_url, lease=1.0, flush_seconds=0.05).open()
        try:
            held = await dead.admit("u@x.org", today, Decimal("0.002"), Decimal("0.002"), None)
            assert held.hold is not None
            dead.pool.terminate()  # type: ignore[union-attr]  # killed: no settle, no renewal
            refused = await live.admit("u@x.org", today, Decimal("0.002"), Decimal("0.001"), None)
            assert refused.hold is None and refused.reserved == Decimal("0.002")
            mine = await live.admit("v@x.org", today, Decimal("0.002"), Decimal("0.002"), None)
            for _ in range(200):  # the dead hold's lease ends within ~1 s
                await asyncio.sleep(0.05)
                again = await live.admit("u@x.org", today, Decimal("0.002"), Decimal("0.001"), None)
                if again.hold is not None:
                    break
            assert again.hold is not None and again.reserved == 0
            # 2 s on, the live relay has renewed its own hold: v@x.org still has nothing left
            await asyncio.sleep(1.0)
            other = await live.admit("v@x.org", today, Decimal("0.002"), Decimal("0.001"), None)
            assert other.hold is None and other.reserved == Decimal("0.002")
            assert mine.hold is not None
        finally:
            await live.aclose()

    asyncio.run(main())


def test_settle_adds_cost_and_releases_in_one_step(pg_url: str) -> None:
    """After a settle, the cost is in the day's spend and the hold is gone, for every relay: the
    spend a settle reports includes the call, and nothing is counted twice."""
    today = utc_today()

    async def main() -> None:
        one = await PgStore(pg_url).open(background=False)
        two = await PgStore(pg_url).open(background=False)
        try:
            a = await one.admit("w@x.org", today, Decimal(1), Decimal("0.5"), None)
            row = _row("w@x.org", Decimal("0.2"))
            one.record(row)
            assert await one.settle(a.hold, "w@x.org", today) == Decimal("0.2")
            seen = await two.admit("w@x.org", today, Decimal(1), Decimal("0.9"), None)
            assert (seen.spent, seen.reserved, seen.amount) == (Decimal("0.2"), 0, Decimal("0.8"))
            assert await one.flush() == 1
            assert await two.spend("w@x.org", 1) == Decimal("0.2")  # the flush adds nothing again
        finally:
            await one.aclose()
            await two.aclose()

    asyncio.run(main())


def _row(email: str, cost: Decimal, **changes: Any) -> Any:
    from relay.clock import utc_now
    from relay.store import LedgerRow

    now = utc_now()
    row = LedgerRow(
        id=f"{id(object()):x}{now.timestamp()}", ts=now, date=now.date(), email=email,
        provider="openai", path="/v1/chat/completions", model="gpt-4o-mini", status=200,
        outcome="ok", input_tokens=1, output_tokens=1, cached_tokens=0, reasoning_tokens=0,
        cost=cost, cost_source="computed", latency_ms=1.0, streamed=False, origin="",
    )
    return dataclasses.replace(row, **changes)


def test_admin_pages_and_export_read_postgres(tmp_path: Path, pg_url: str, make_client) -> None:
    """/usage/requests, /admin/users, /admin/spend and /admin/export answer from PostgreSQL as
    they do from DuckDB (same SQL, numbered placeholders)."""
    client = make_client(make_settings(tmp_path, database_url=pg_url))
    tok = issue_token(client.app.state.settings, "student@example.com")
    chat = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
    assert client.post("/openai/v1/chat/completions", json=chat, headers=auth(tok)).status_code == 200
    mine = client.get("/usage/requests", headers=auth(tok)).json()["data"]
    assert [r["model"] for r in mine] == ["gpt-4o-mini"]
    admin = auth(issue_token(client.app.state.settings, ADMIN))
    users = client.get("/admin/users", headers=admin).json()["data"]
    assert [(u["email"], u["requests"]) for u in users] == [("student@example.com", 1)]
    spend = client.get("/admin/spend?group=model", headers=admin).json()
    assert [d["key"] for d in spend["data"]] == ["gpt-4o-mini"]
    since = (utc_today() - timedelta(days=1)).isoformat()
    assert client.get(f"/admin/usage?since={since}", headers=admin).json()["data"][0]["cost"] > 0
    r = client.get("/admin/export?format=csv", headers=admin)
    assert r.status_code == 200
    lines = r.text.splitlines()
    assert lines[0].startswith("id,ts,date,email") and len(lines) == 2


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_export_file_from_postgres(tmp_path: Path, pg_url: str, fmt: str) -> None:
    """The store's export writes every ledger row, both formats, with nothing left behind."""

    async def main() -> int:
        store = await PgStore(pg_url).open(background=False)
        try:
            for i in range(3):
                store.record(_row("e@x.org", Decimal("0.1"), id=f"row{i}"))
            return await store.export_file(tmp_path / f"out.{fmt}", fmt)
        finally:
            await store.aclose()

    assert asyncio.run(main()) == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"out.{fmt}"]
