"""Soak: 50 simulated users for a bounded time against the fake upstream, with faults mixed in.

A real `python -m relay serve` process sits in front of the fake providers (served by this
process on a port). Each user loops over a weighted mix of calls — OpenAI chat (JSON and
streamed), OpenRouter streamed chat (provider-reported cost), Gemini generateContent — and of
faults: provider 500 and 429, a stream or JSON body cut mid-way, a silent provider (cut by the
relay's idle timeout), a slow stream, a client that leaves mid-stream, and an error that quotes
the operator's key. Every call carries a unique `Origin` (the ledger records it).

After the run the relay is stopped with SIGTERM (so it flushes) and the ledger is compared with
what the clients sent and what the fake upstream served:
- lost rows: calls sent but missing from the ledger (goal 0), and duplicated rows;
- completed calls (`outcome = ok`) must be exactly the calls the upstream billed: same count,
  same token totals, and the same dollars (tokens × the price table for OpenAI and Gemini, the
  reported cost for OpenRouter);
- faulted calls are counted by kind, with the estimated cost the relay charged for them;
- no 500 from the relay itself, no provider key in any answer, relay peak memory (VmHWM) and
  RSS at start and end.

Run: `.venv/bin/python bench/soak.py [--seconds 60] [--users 50] [--out bench/results/soak.json]`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import signal
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # `python bench/soak.py`: make the repo importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx

from bench.kill_test import KEYS, relay_env, token_for
from bench.run import children
from relay.costing.pricing import PriceTable
from relay.store import Store
from testkit.relay_process import RelayProcess

MILLION = Decimal(1_000_000)
PROMPT = [{"role": "user", "content": "tell me something short please"}]
# (name, weight): what a user does next. Faults make up about a fifth of the calls.
MIX = [
    ("openai_json", 25), ("openai_stream", 25), ("openrouter_stream", 12), ("gemini_json", 8),
    ("gemini_stream", 8), ("slow_stream", 4), ("error500", 3), ("error429", 2), ("break_stream", 4),
    ("break_json", 2), ("silent", 1), ("client_abort", 4), ("leakkey", 2),
]
FAULTS = {"error500", "error429", "break_stream", "break_json", "silent", "client_abort", "leakkey"}


@dataclass
class SoakReport:
    seconds: float
    users: int
    requests: int = 0
    requests_per_second: float = 0.0
    by_kind: dict[str, int] = field(default_factory=dict)
    faults: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    relay_500s: int = 0
    key_leaks: int = 0
    ledger_rows: int = 0
    lost_rows: int = 0
    duplicate_rows: int = 0
    completed_rows: int = 0
    upstream_billed: int = 0
    completed_tokens: tuple[int, int] = (0, 0)
    billed_tokens: tuple[int, int] = (0, 0)
    ledger_cost_completed: str = "0"
    upstream_cost: str = "0"
    fault_cost_estimated: str = "0"
    outcomes: dict[str, int] = field(default_factory=dict)
    relay_rss_start_mb: float = 0.0
    relay_rss_end_mb: float = 0.0
    relay_peak_mb: float = 0.0
    worker_rss_end_mb: float = 0.0  # the store worker (DuckDB) beside the relay
    worker_peak_mb: float = 0.0
    healthz_end: dict[str, Any] = field(default_factory=dict)
    ok: bool = False


def _proc_mb(pid: int, field_name: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field_name + ":"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


async def _one(client: httpx.AsyncClient, relay: str, token: str, kind: str, origin: str,
               statuses: Counter, problems: Counter) -> None:
    headers = {"authorization": f"Bearer {token}", "origin": origin}
    path, body = "/openai/v1/chat/completions", {"model": "gpt-4o-mini", "messages": PROMPT}
    stream = kind.endswith("stream") or kind in ("silent", "client_abort")
    if kind.startswith("openrouter"):
        path, body = "/openrouter/v1/chat/completions", {"model": "openai/gpt-4o-mini",
                                                         "messages": PROMPT}
    elif kind.startswith("gemini"):
        action = "streamGenerateContent?alt=sse" if stream else "generateContent"
        path = f"/geminiv1beta/models/gemini-2.0-flash:{action}"
        body = {"contents": [{"parts": [{"text": PROMPT[0]["content"]}]}]}
    if stream and not kind.startswith("gemini"):
        body["stream"] = True
    fake = {"slow_stream": "slow", "error500": "error500", "error429": "error429",
            "break_stream": "break", "break_json": "break", "silent": "silent",
            "client_abort": "slow", "leakkey": "leakkey"}.get(kind)
    if fake:
        headers["x-fake"] = fake
        headers["x-fake-delay"] = "50"
    if kind == "client_abort":  # long enough that the upstream is still talking when we leave
        headers["x-fake-chunks"], headers["x-fake-delay"] = "40", "100"
    async with client.stream("POST", relay + path, json=body, headers=headers) as r:
        statuses[str(r.status_code)] += 1
        received = b""
        async for chunk in r.aiter_raw():
            received += chunk
            if kind == "client_abort":
                break  # leave after the first chunk
    if r.status_code == 500 and received.startswith(b'{"message":'):
        problems["relay_500"] += 1
    if any(key.encode() in received for key in KEYS.values()):
        problems["key_leak"] += 1


async def _user(relay: str, token: str, user: int, until: float, sent: list[str],
                kinds: Counter, statuses: Counter, problems: Counter, seed: int) -> None:
    rng = random.Random(seed + user)
    names, weights = zip(*MIX, strict=True)
    async with httpx.AsyncClient(timeout=30) as client:
        n = 0
        while time.monotonic() < until:
            kind = rng.choices(names, weights)[0]
            origin = f"soak-{user}-{n}"
            n += 1
            sent.append(origin)
            kinds[kind] += 1
            try:
                await _one(client, relay, token, kind, origin, statuses, problems)
            except httpx.HTTPError as e:
                statuses[type(e).__name__] += 1
            await asyncio.sleep(rng.uniform(0, 0.05))  # think time


def _expected(billed: list[dict[str, Any]]) -> tuple[Decimal, int, int]:
    """Dollars and (input, output) tokens of what the upstream served, priced independently."""
    table = PriceTable.load()
    cost, tokens_in, tokens_out = Decimal(0), 0, 0
    for b in billed:
        u = b["usage"]
        if b["provider"] == "gemini":
            i, o = u["promptTokenCount"], u["candidatesTokenCount"] + u.get("thoughtsTokenCount", 0)
        else:
            i, o = u["prompt_tokens"], u["completion_tokens"]
        tokens_in, tokens_out = tokens_in + i, tokens_out + o
        if b["cost"] is not None:  # OpenRouter's own figure
            cost += Decimal(b["cost"])
        else:
            price = table.lookup(b["provider"], b["model"])
            assert price is not None and price.input is not None and price.output is not None
            cost += (i * price.input + o * price.output) / MILLION
    return cost, tokens_in, tokens_out


def soak(upstream_url: str, upstream_app: Any, work: Path, *, seconds: float = 60,
         users: int = 50, seed: int = 7) -> SoakReport:
    report = SoakReport(seconds, users)
    env = relay_env(work / "data", upstream_url, flush_seconds=0.5,
                    AIPIPE_STREAM_IDLE_TIMEOUT="1.5", AIPIPE_UPSTREAM_TIMEOUT="5")
    relay = RelayProcess(env, "--grace", "10").wait_ready()
    report.relay_rss_start_mb = _proc_mb(relay.proc.pid, "VmRSS")
    tokens = [token_for(env, f"user{u:02d}@example.com") for u in range(users)]
    sent: list[str] = []
    kinds: Counter = Counter()
    statuses: Counter = Counter()
    problems: Counter = Counter()

    async def run() -> None:
        until = time.monotonic() + seconds
        await asyncio.gather(*(_user(relay.url, tokens[u], u, until, sent, kinds, statuses,
                                     problems, seed) for u in range(users)))

    started = time.monotonic()
    asyncio.run(run())
    elapsed = time.monotonic() - started
    time.sleep(2)  # let the relay notice the last client-side aborts and record them
    report.healthz_end = httpx.get(f"{relay.url}/healthz", timeout=10).json()
    report.relay_rss_end_mb = _proc_mb(relay.proc.pid, "VmRSS")
    report.relay_peak_mb = _proc_mb(relay.proc.pid, "VmHWM")
    for child in children(relay.proc.pid):
        report.worker_rss_end_mb += _proc_mb(child, "VmRSS")
        report.worker_peak_mb += _proc_mb(child, "VmHWM")
    relay.stop(signal.SIGTERM)

    store = Store(work / "data" / "aipipe.duckdb").open(background=False)
    try:
        rows = store.query("SELECT origin, outcome, cost, input_tokens, output_tokens FROM requests")
    finally:
        store.close()
    origins = Counter(r[0] for r in rows)
    completed = [r for r in rows if r[1] == "ok"]
    billed = [b for b in upstream_app.state.billed]
    expected_cost, billed_in, billed_out = _expected(billed)

    report.requests = len(sent)
    report.requests_per_second = round(len(sent) / elapsed, 1)
    report.by_kind = dict(kinds.most_common())
    report.faults = sum(n for k, n in kinds.items() if k in FAULTS)
    report.statuses = dict(statuses.most_common())
    report.relay_500s, report.key_leaks = problems["relay_500"], problems["key_leak"]
    report.ledger_rows = len(rows)
    report.lost_rows = sum(1 for o in sent if o not in origins)
    report.duplicate_rows = sum(n - 1 for n in origins.values() if n > 1)
    report.completed_rows, report.upstream_billed = len(completed), len(billed)
    report.completed_tokens = (sum(r[3] for r in completed), sum(r[4] for r in completed))
    report.billed_tokens = (billed_in, billed_out)
    report.ledger_cost_completed = str(sum((Decimal(r[2]) for r in completed), Decimal(0)))
    report.upstream_cost = str(expected_cost)
    report.fault_cost_estimated = str(
        sum((Decimal(r[2]) for r in rows if r[1] != "ok"), Decimal(0)))
    report.outcomes = dict(Counter(r[1] for r in rows).most_common())
    report.ok = (
        report.lost_rows == 0 and report.duplicate_rows == 0 and report.relay_500s == 0
        and report.key_leaks == 0 and report.completed_rows == report.upstream_billed
        and report.completed_tokens == report.billed_tokens
        and Decimal(report.ledger_cost_completed) == expected_cost
        and report.healthz_end.get("requests_in_flight") == 0
        and report.healthz_end.get("reserved_usd") == "0"
    )
    return report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()

    from testkit.fakes.server import serve_asgi
    from testkit.fakes.upstream import create_fake_upstream

    upstream = create_fake_upstream()
    with serve_asgi(upstream) as url, tempfile.TemporaryDirectory(prefix="aipipe-soak-") as tmp:
        report = soak(url, upstream, Path(tmp), seconds=args.seconds, users=args.users,
                      seed=args.seed)
    text = json.dumps(asdict(report), indent=2)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    return 0 if report.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
