"""Which PostgreSQL driver for the hot path: asyncpg vs psycopg 3, measured on what the relay
does per call - one admission and one settle (the store's own SQL functions), each a round trip
through a connection pool - at 1, 16 and 64 concurrent callers. Reports calls/s, the client's
CPU per call (this process) and the server's (every PostgreSQL process), from one run.

Run: `.venv/bin/pip install 'psycopg[binary]' psycopg_pool` (not a dependency of the relay),
then `.venv/bin/python bench/pg_driver.py`. Starts its own throwaway server (testkit/postgres.py).
"""

from __future__ import annotations

import asyncio
import resource
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import date
from decimal import Decimal
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import asyncpg

from bench.run import postgres_cpu_seconds
from relay.store.pg_schema import migrate
from testkit.postgres import PostgresServer, create_database

ADMIT = "SELECT n, hold FROM aipipe_admit($1, $2, $3, $4, $5, $6)"
SETTLE = "SELECT n, spent FROM aipipe_settle($1, $2, $3, $4, $5, $6)"
LIMIT, WANT, COST = Decimal(10**6), Decimal("0.001"), Decimal("0.0005")


def cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


async def asyncpg_calls(url: str, size: int) -> tuple[Callable[[str], Awaitable[None]], Callable]:
    pool = await asyncpg.create_pool(url, min_size=size, max_size=size)
    today = date.today()

    async def call(email: str) -> None:
        async with pool.acquire() as con:
            row = await con.fetchrow(ADMIT, [email], [today], [LIMIT], [WANT], [None], 60.0)
        async with pool.acquire() as con:
            await con.fetch(SETTLE, [row[1]], [email], [today], [COST], [email], [today])

    return call, pool.close


async def psycopg_calls(url: str, size: int) -> tuple[Callable[[str], Awaitable[None]], Callable]:
    from psycopg_pool import AsyncConnectionPool

    pool = AsyncConnectionPool(url, min_size=size, max_size=size, open=False,
                               kwargs={"autocommit": True, "prepare_threshold": 0})
    await pool.open()
    await pool.wait()
    today = date.today()
    admit = ADMIT.replace("$6", "%s").replace("$5", "%s::int[]")
    settle = SETTLE
    for i in range(6, 0, -1):
        admit, settle = admit.replace(f"${i}", "%s"), settle.replace(f"${i}", "%s")

    async def call(email: str) -> None:
        async with pool.connection() as con:
            cur = await con.execute(admit, ([email], [today], [LIMIT], [WANT], [None], 60.0))
            row = await cur.fetchone()
        async with pool.connection() as con:
            await con.execute(settle, ([row[1]], [email], [today], [COST], [email], [today]))

    return call, pool.close


async def measure(name: str, make, url: str, conc: int, calls: int, postmaster: int) -> str:  # type: ignore[no-untyped-def]
    call, close = await make(url, conc)

    async def worker(i: int, n: int) -> None:
        for _ in range(n):
            await call(f"user{i}@example.com")

    await asyncio.gather(*(worker(i, 50) for i in range(conc)))  # warm up
    c0, p0, t0 = cpu(), postgres_cpu_seconds(postmaster), time.perf_counter()
    await asyncio.gather(*(worker(i, calls // conc) for i in range(conc)))
    c1, p1, t1 = cpu(), postgres_cpu_seconds(postmaster), time.perf_counter()
    await close()
    n = calls // conc * conc
    return (f"| {name} | {conc} | {n / (t1 - t0):,.0f} | {(c1 - c0) / n * 1e6:.0f} | "
            f"{(p1 - p0) / n * 1e6:.0f} |")


async def main(server: PostgresServer, url: str) -> None:
    con = await asyncpg.connect(url)
    await migrate(con)
    await con.close()
    drivers = [("asyncpg", asyncpg_calls)]
    try:
        import psycopg_pool  # noqa: F401

        drivers.append(("psycopg 3", psycopg_calls))
    except ImportError:
        print("(psycopg 3 is not installed: measuring asyncpg only)")
    print("| driver | callers | admit+settle pairs/s | client CPU µs/pair | server CPU µs/pair |")
    print("|---|---:|---:|---:|---:|")
    for conc in (1, 16, 64):
        for name, make in drivers:
            print(await measure(name, make, url, conc, 4000, server.pid() or 0), flush=True)

if __name__ == "__main__":
    pg = PostgresServer(fsync=True).init().start()
    try:
        asyncio.run(main(pg, create_database(pg.url)))
    finally:
        pg.remove()
