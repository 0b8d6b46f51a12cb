"""Kill test: SIGKILL the relay in the middle of a load, restart it, count what the ledger lost.

A real `python -m relay serve` process sits in front of the fake upstream (on its own port).
Workers send chat calls as fast as the relay answers them, each tagged with a unique `Origin`
header (the ledger records it), and note when each answer arrived complete. After `--seconds`
the relay is SIGKILLed. Then:
- the DuckDB file is opened (it must open: never corrupt) and its rows are matched to the answers
  the clients received; a "lost" row is an answered call missing from the ledger;
- each lost call's age at the kill is compared with the flush interval (the promise: at most the
  last flush interval of rows is lost);
- per-day totals must equal the sum of the ledger rows (they are written in one transaction);
- the relay is restarted on the same file and must serve, with `/usage` showing the ledger's spend.

Run: `.venv/bin/python bench/kill_test.py [--seconds 5] [--workers 16] [--flush 0.5]`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from pathlib import Path

if __package__ in (None, ""):  # `python bench/kill_test.py`: make the repo importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx

from relay.auth.tokens import issue_token
from relay.settings import load_settings
from relay.store import Store
from testkit.relay_process import RelayProcess, clean_env

ROOT = Path(__file__).resolve().parent.parent
SECRET = "kill-test-secret-0123456789abcdef0123456789"
EMAIL = "load@example.com"
CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hello there"}]}
POLICY = '[budget]\n"*" = { limit = 100000, days = 1 }\n'
KEYS = {"OPENAI_API_KEY": "sk-test-openai", "OPENROUTER_API_KEY": "sk-or-test",
        "GEMINI_API_KEY": "AIza-test-gemini"}


def relay_env(data_dir: Path, upstream: str, flush_seconds: float, **extra: str) -> dict[str, str]:
    """The environment of a relay in front of the fake upstream, with a roomy budget."""
    data_dir.mkdir(parents=True, exist_ok=True)
    config = data_dir.parent / "aipipe.toml"
    config.write_text(POLICY)
    return clean_env(
        **KEYS,
        AIPIPE_SECRET=SECRET,
        AIPIPE_DATA_DIR=str(data_dir),
        AIPIPE_CONFIG=str(config),
        AIPIPE_FLUSH_SECONDS=str(flush_seconds),
        AIPIPE_OPENAI_BASE=f"{upstream}/openai",
        AIPIPE_OPENROUTER_BASE=f"{upstream}/openrouter",
        AIPIPE_GEMINI_BASE=f"{upstream}/gemini",
        **extra,
    )


def token_for(env: dict[str, str], email: str = EMAIL) -> str:
    return issue_token(load_settings(env, cwd=Path(env["AIPIPE_DATA_DIR"])), email)


def ledger(data_dir: Path) -> tuple[dict[str, tuple[str, Decimal]], list[tuple]]:
    """origin -> (outcome, cost) for every ledger row, and the per-(email, date) mismatches
    between the day totals and the rows (must be none)."""
    store = Store(data_dir / "aipipe.duckdb").open(background=False)
    try:
        rows = {o: (out, Decimal(c)) for o, out, c in store.query(
            "SELECT origin, outcome, cost FROM requests")}
        mismatched = store.query(
            "SELECT d.email, d.date, d.cost, r.cost FROM daily d FULL JOIN "
            "(SELECT email, date, sum(cost) AS cost FROM requests GROUP BY ALL) r "
            "USING (email, date) WHERE coalesce(d.cost, 0) <> coalesce(r.cost, 0)")
    finally:
        store.close()
    return rows, mismatched


@dataclass
class KillReport:
    seconds: float
    workers: int
    flush_seconds: float
    sent: int = 0
    answered: int = 0  # complete 200 answers the clients received before the kill
    rows: int = 0  # ledger rows found after the kill
    lost: int = 0  # answered calls missing from the ledger
    lost_oldest_ms: float = 0.0  # how long before the kill the oldest lost call was answered
    lost_within_flush_window: bool = True
    rows_per_second: float = 0.0
    day_totals_consistent: bool = True
    restart_ok: bool = False  # restarted on the same file, served, and flushed on SIGTERM
    spend_after_restart_matches: bool = False
    notes: list[str] = field(default_factory=list)


async def _load(url: str, token: str, workers: int, answered: dict[str, float],
                sent: list[int], stop: asyncio.Event) -> None:
    headers = {"authorization": f"Bearer {token}"}
    limits = httpx.Limits(max_connections=workers)

    async def worker(w: int, client: httpx.AsyncClient) -> None:
        n = 0
        while not stop.is_set():
            origin = f"kill-{w}-{n}"
            n += 1
            sent[0] += 1
            try:
                r = await client.post(f"{url}/openai/v1/chat/completions", json=CHAT,
                                      headers={**headers, "origin": origin})
            except httpx.HTTPError:
                return  # the relay is gone
            if r.status_code == 200:
                answered[origin] = time.monotonic()

    async with httpx.AsyncClient(timeout=10, limits=limits) as client:
        await asyncio.gather(*(worker(w, client) for w in range(workers)))


def kill_test(upstream: str, work_dir: Path, *, seconds: float = 5, workers: int = 16,
              flush_seconds: float = 0.5) -> KillReport:
    report = KillReport(seconds, workers, flush_seconds)
    data_dir = work_dir / "data"
    env = relay_env(data_dir, upstream, flush_seconds)
    relay = RelayProcess(env).wait_ready()
    token = token_for(env)
    answered: dict[str, float] = {}
    sent = [0]

    async def run() -> float:
        stop = asyncio.Event()
        load = asyncio.create_task(_load(relay.url, token, workers, answered, sent, stop))
        await asyncio.sleep(seconds)
        killed_at = time.monotonic()
        relay.proc.send_signal(signal.SIGKILL)
        stop.set()
        await load
        return killed_at

    killed_at = asyncio.run(run())
    relay.proc.wait(timeout=10)
    report.sent, report.answered = sent[0], len(answered)
    rows, mismatched = ledger(data_dir)
    report.rows = len(rows)
    report.rows_per_second = round(report.answered / seconds, 1)
    lost = [o for o in answered if o not in rows]
    report.lost = len(lost)
    if lost:
        oldest = max(0.0, max(killed_at - answered[o] for o in lost))  # <0: answered mid-kill
        report.lost_oldest_ms = round(oldest * 1000, 1)
        # A row waits at most one interval, plus the time one batch takes to write.
        report.lost_within_flush_window = oldest <= flush_seconds + 0.5
    report.day_totals_consistent = not mismatched
    if mismatched:
        report.notes.append(f"day totals differ from rows: {mismatched[:3]}")

    again = RelayProcess(env).wait_ready()
    try:
        r = httpx.post(f"{again.url}/openai/v1/chat/completions", json=CHAT,
                       headers={"authorization": f"Bearer {token}", "origin": "after-restart"},
                       timeout=10)
        usage = httpx.get(f"{again.url}/usage", headers={"authorization": f"Bearer {token}"},
                          timeout=10).json()
        report.restart_ok = r.status_code == 200
        spent = sum((c for _, c in rows.values()), Decimal(0)) + Decimal(r.headers["x-aipipe-cost"])
        report.spend_after_restart_matches = abs(Decimal(str(usage["cost"])) - spent) < Decimal("1e-6")
    finally:
        code = again.stop()  # SIGTERM: uvicorn drains, the lifespan flushes, then re-raises it
    if code not in (0, -signal.SIGTERM):
        report.notes.append(f"restarted relay exited {code}: {again.output()[-500:]}")
    report.restart_ok = report.restart_ok and "after-restart" in ledger(data_dir)[0]
    return report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--workers", type=int, default=16)
    parser.add_argument("--flush", type=float, default=0.5)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    from testkit.fakes.server import serve_asgi
    from testkit.fakes.upstream import create_fake_upstream

    reports = []
    with serve_asgi(create_fake_upstream()) as upstream:
        for _ in range(args.rounds):
            with tempfile.TemporaryDirectory(prefix="aipipe-kill-") as tmp:
                report = kill_test(upstream, Path(tmp), seconds=args.seconds,
                                   workers=args.workers, flush_seconds=args.flush)
            reports.append(asdict(report))
            print(json.dumps(reports[-1]), flush=True)
    ok = all(r["lost_within_flush_window"] and r["day_totals_consistent"] and r["restart_ok"]
             and r["spend_after_restart_matches"] for r in reports)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
