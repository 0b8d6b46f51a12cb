"""How the relay's costs grow with the ledger: /usage and the budget check on 10 million rows.

For each ledger size it writes a DuckDB file with that many requests (spread over `--users`
emails and `--days` UTC dates, the daily totals filled in as the relay would), then opens it as
the relay does and measures:
- open: start-up of the store (migrations + loading the per-day spend mirror) and its memory;
- the budget check (`Budgets.admit` + settle) and `GET /usage`: both read the in-memory mirror,
  so their cost should not grow with the ledger;
- `GET /usage/requests` and `GET /admin/usage`: DuckDB queries over the ledger/daily tables;
- one background flush of 1,000 new rows into the big ledger.

Run: `.venv/bin/python bench/ledger_scale.py` (sizes 100k, 1M, 10M; `--sizes` to change).
Writes bench/results/ledger.md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

if __package__ in (None, ""):  # `python bench/ledger_scale.py`: make `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.docs import place
from bench.run import rss_mb

HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE / "results" / "ledger.md"  # a run written here also updates docs/performance.md
SECRET = "bench-secret-0123456789abcdef0123456789abcdef"

# One row per request, spread over users and dates that end today (so budget windows see them):
# each run of `days` rows is one user on every date, so daily totals cover users x days.
_FILL = """
INSERT INTO requests SELECT
    'req-' || i::VARCHAR,
    (current_date - CAST(i % $days AS INTEGER))::TIMESTAMP + to_seconds(CAST(i % 86400 AS BIGINT)),
    current_date - CAST(i % $days AS INTEGER),
    'user' || (((i // $days) * 7919) % $users)::VARCHAR || '@example.com',
    'openai', '/v1/chat/completions', 'gpt-4o-mini', 200, 'ok',
    12 + i % 500, 20 + i % 300, 0, 0,
    CAST(0.00001 + (i % 100) / 1000000.0 AS DECIMAL(18,10)),
    'computed', 450.0 + i % 300, i % 3 = 0, ''
FROM range($start, $stop) t(i)
"""
_DAILY = "INSERT INTO daily SELECT email, date, sum(cost) FROM requests GROUP BY email, date"


def build_ledger(path: Path, rows: int, users: int, days: int) -> float:
    """Write `rows` requests and their daily totals; returns seconds taken."""
    from relay.store import Store

    started = time.perf_counter()
    store = Store(path).open(background=False)
    con = store.ledger.con  # type: ignore[attr-defined]  # in process: a LedgerDB
    try:
        step = 2_000_000
        for start in range(0, rows, step):
            con.execute(
                _FILL, {"start": start, "stop": min(rows, start + step), "users": users, "days": days}
            )
        con.execute(_DAILY)
        con.execute("CHECKPOINT")
    finally:
        store.close()
    return time.perf_counter() - started


def timed(fn: Callable[[], object], count: int) -> tuple[float, float]:
    """Median and p99 of `count` calls, in milliseconds."""
    times = []
    for _ in range(count):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    times.sort()
    return statistics.median(times), times[min(len(times) - 1, int(len(times) * 0.99))]


def settled(coroutine):  # type: ignore[no-untyped-def]
    """The value of a coroutine that finishes without suspending (in-process budgets)."""
    try:
        coroutine.send(None)
    except StopIteration as done:
        return done.value
    raise RuntimeError("the coroutine suspended: it needs an event loop")


def measure(path: Path, users: int, days: int) -> dict[str, float]:
    from starlette.testclient import TestClient

    from relay.app import create_app
    from relay.auth.tokens import issue_token
    from relay.clock import utc_now
    from relay.costing.budget import Budgets
    from relay.policy import parse_policy
    from relay.settings import Settings
    from relay.store import LedgerRow, Store

    out: dict[str, float] = {}
    Store(path.parent / "warm.duckdb").open(background=False).close()  # DuckDB's own start-up
    out["rss_before_mb"] = rss_mb_self()
    policy = parse_policy({"budget": {"*": {"limit": 1000.0, "days": 30}}, "admins": ["admin@example.com"]})
    rss0 = rss_mb_self()
    t = time.perf_counter()
    # As the relay opens it: the mirror holds the policy's longest budget window (30 days here).
    store = Store(path, mirror_days=policy.longest_window()).open(background=False)
    out["open_s"] = time.perf_counter() - t
    out["mirror_mb"] = rss_mb_self() - rss0
    out["rss_open_mb"] = rss_mb_self()
    budgets = Budgets(policy, store)
    email = "user42@example.com"

    def check() -> None:  # the DuckDB store's budgets never wait: drive them without a loop
        settled(budgets.settle(settled(budgets.admit(email, Decimal("0.001")))))

    out["budget_ms"], out["budget_p99_ms"] = timed(check, 20_000)
    now = utc_now()
    rows = [
        LedgerRow(f"new-{i}", now, now.date(), f"user{i % users}@example.com", "openai",
                  "/v1/chat/completions", "gpt-4o-mini", 200, "ok", 12, 20, 0, 0,
                  Decimal("0.0000138"), "computed", 450.0, False, "")
        for i in range(1000)
    ]
    for row in rows:
        store.record(row)
    t = time.perf_counter()
    store.flush()
    out["flush_1000_ms"] = (time.perf_counter() - t) * 1000
    store.close()

    settings = Settings(secret=SECRET, data_dir=path.parent, policy=policy, flush_seconds=60)
    token = issue_token(settings, email)
    admin = issue_token(settings, "admin@example.com")
    with TestClient(create_app(settings)) as client:
        auth = {"authorization": f"Bearer {token}"}
        assert client.get("/usage", headers=auth).status_code == 200
        out["usage_ms"], out["usage_p99_ms"] = timed(lambda: client.get("/usage", headers=auth), 300)
        out["recent_ms"], _ = timed(lambda: client.get("/usage/requests", headers=auth), 10)
        admin_auth = {"authorization": f"Bearer {admin}"}
        out["admin_usage_ms"], _ = timed(
            lambda: client.get("/admin/usage", params={"email": email}, headers=admin_auth), 10
        )
    return out


def rss_mb_self() -> float:
    return rss_mb(os.getpid())


def render(results: list[tuple[int, float, float, dict[str, float]]], users: int, days: int) -> str:
    lines = [
        "# Ledger scale — latest run",
        "",
        f"Ledger spread over {users:,} users and {days} UTC dates. The budget check and `/usage` "
        "read the in-memory per-day mirror; `/usage/requests` and `/admin/usage` query DuckDB. "
        "Times are medians (p99 in brackets) in one process on this machine.",
        "",
        "| ledger rows | file MB | open (mirror load) | RSS after open (mirror) | budget check | GET /usage "
        "| GET /usage/requests | GET /admin/usage?email= | flush 1,000 rows |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for rows, size_mb, _, m in results:
        lines.append(
            f"| {rows:,} | {size_mb:,.0f} | {m['open_s'] * 1000:,.0f} ms | "
            f"{m['rss_open_mb']:.0f} MB (+{m['mirror_mb']:.0f}) | "
            f"{m['budget_ms'] * 1000:.1f} µs ({m['budget_p99_ms'] * 1000:.1f}) | "
            f"{m['usage_ms']:.2f} ms ({m['usage_p99_ms']:.2f}) | {m['recent_ms']:.1f} ms | "
            f"{m['admin_usage_ms']:.1f} ms | {m['flush_1000_ms']:.0f} ms |"
        )
    lines.append("")
    lines.append(
        "Build time (DuckDB, generated in SQL): "
        + ", ".join(f"{rows:,} rows {secs:.1f} s" for rows, _, secs, _ in results)
        + "."
    )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="100000,1000000,10000000")
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--build", type=Path, help=argparse.SUPPRESS)  # child: build this file
    parser.add_argument("--measure", type=Path, help=argparse.SUPPRESS)  # child: measure it
    args = parser.parse_args(argv)
    if args.build:
        seconds = build_ledger(args.build, int(args.sizes), args.users, args.days)
        print(json.dumps({"seconds": seconds}))
        return 0
    if args.measure:
        print(json.dumps(measure(args.measure, args.users, args.days)))
        return 0
    results = []
    for size in (int(s) for s in args.sizes.split(",")):
        with tempfile.TemporaryDirectory(prefix="aipipe-ledger-") as tmp:
            path = Path(tmp) / "aipipe.duckdb"
            # Each step in a fresh process, so one size's memory does not colour the next.
            common = ["--sizes", str(size), "--users", str(args.users), "--days", str(args.days)]
            built = _child([*common, "--build", str(path)])["seconds"]
            size_mb = path.stat().st_size / 2**20
            print(f"{size:,} rows built in {built:.1f} s ({size_mb:.0f} MB)", file=sys.stderr, flush=True)
            results.append((size, size_mb, built, _child([*common, "--measure", str(path)])))
    text = render(results, args.users, args.days)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    if args.out == DEFAULT_OUT:  # a real run (not a smoke test): the figures the docs show
        place("ledger", text)
    print(text)
    return 0


def _child(args: list[str]) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), *args], capture_output=True, text=True, check=True
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


if __name__ == "__main__":
    sys.exit(main())
