"""The relay benchmark: direct-to-upstream vs through-the-relay, side by side, in one run.

Pinning (2 cores): the load generator (wrk, and this script's probes) and the fake upstream share
core 0; the relay runs alone on core 1 — so what the relay costs shows as its own core's work.
Token check, budget check and cost recording stay on: every relayed call is a real AI Pipe user
call with a budget, priced from usage and written to the DuckDB ledger.

Measures, for non-stream and 20-chunk stream calls at 1, 16 and 64 connections: req/s, p50/p99
(wrk --latency), relay CPU ms per request (/proc/<pid>/stat utime+stime, store worker included);
plus idle RSS (once the store worker has stopped) and the worker's,
start-up to first answered request, and — with a sequential client on one kept-alive
connection — the added p50 of one call and the time to first chunk.

With `--stores duckdb,postgresql` (the default) the same run is made twice: on the DuckDB file,
and on the PostgreSQL store (a throwaway server from testkit/postgres.py, fsync on, pinned to the
relay's core: the relay and its database share one core, and the database's CPU per call is
counted beside the relay's).

Run: `.venv/bin/python bench/run.py` (or `make bench`); writes bench/results/latest.md.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

if __package__ in (None, ""):  # `python bench/run.py`: make `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.docs import place
from bench.probe import Connection, percentile, wait_for_answer
from testkit.postgres import PostgresServer, create_database
from testkit.relay_process import RelayProcess, free_port, stop_process

HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE / "results" / "latest.md"  # a run written here also updates docs/performance.md
ROOT = HERE.parent
LUA = HERE / "wrk" / "chat.lua"
HOST = "127.0.0.1"
CHAT = "/v1/chat/completions"
RELAY_CHAT = "/openai" + CHAT
EMAIL = "bench@example.com"
SECRET = "bench-secret-0123456789abcdef0123456789abcdef"
POLICY = '[budget]\n"*" = { limit = 1000000, days = 7 }\n'
BODY = (
    b'{"model":"gpt-4o-mini","messages":[{"role":"system","content":"You are terse."},'
    b'{"role":"user","content":"Say hello in twenty words."}],"max_tokens":64%b}'
)
LOAD_CORE, RELAY_CORE = 0, 1
STARTS = 3
TICK = os.sysconf("SC_CLK_TCK")

# The goals of issue 5.
GOAL_ADDED_P50_MS = 1.0
GOAL_ADDED_TTFC_MS = 1.0
GOAL_JSON_RPS_64 = 1200
GOAL_STREAM_RPS_64 = 400
GOAL_RSS_MB = 80
GOAL_STARTUP_S = 1.0
# The goals of issue 15 (PostgreSQL store).
GOAL_PG_ADDED_P50_MS = 1.5
GOAL_PG_CPU_MS = 1.0  # relay + database CPU per non-stream call


@dataclass
class WrkResult:
    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int  # socket errors + non-2xx answers


@dataclass
class Row:
    mode: str  # "json" | "stream"
    conns: int
    direct: WrkResult
    relay: WrkResult
    relay_cpu_ms: float  # relay + store worker CPU per request
    core_other_pct: float = 0.0  # how busy other processes kept the relay's core during the run
    db_cpu_ms: float = 0.0  # PostgreSQL's CPU per request (all its processes), PostgreSQL store

    @property
    def capacity(self) -> float:
        """Requests per second one core could serve at this CPU cost (1000 / CPU ms)."""
        cpu = self.relay_cpu_ms + self.db_cpu_ms
        return 1000 / cpu if cpu > 0 else float("nan")


@dataclass
class Report:
    machine: str
    load_before: str
    store: str = "duckdb"  # or "postgresql"
    load_after: str = ""
    duration: float = 0.0
    startup_s: float = 0.0
    store_idle_s: float = 0.0  # AIPIPE_STORE_IDLE for the run
    rss_idle_mb: float = 0.0  # the relay once its store worker has stopped (nothing else runs)
    private_idle_mb: float = 0.0
    rss_worker_mb: float = 0.0  # the store worker while it runs (after the first call)
    rss_after_mb: float = 0.0  # relay + worker right after the load
    rows: list[Row] = field(default_factory=list)
    probe: dict[str, float] = field(default_factory=dict)
    log_lines_per_request: float = 0.0


# -- processes --------------------------------------------------------------------------------
def pinned(core: int, argv: list[str]) -> list[str]:
    return ["taskset", "-c", str(core), *argv] if shutil.which("taskset") else argv


def start_upstream(port: int, core: int = LOAD_CORE) -> subprocess.Popen:
    proc = subprocess.Popen(
        pinned(core, [sys.executable, str(HERE / "upstream.py"), "--port", str(port)]),
        stdout=subprocess.DEVNULL,
    )
    wait_for_answer(HOST, port, "GET", "/healthz", {}, b"")
    return proc


def relay_env(
    data_dir: Path, upstream_port: int, store_idle: float = 60, database_url: str | None = None
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIPIPE_") and not k.endswith("_API_KEY")}
    policy = data_dir / "bench.toml"
    policy.write_text(POLICY)
    env.update(
        AIPIPE_SECRET=SECRET,
        AIPIPE_DATA_DIR=str(data_dir),
        AIPIPE_CONFIG=str(policy),
        OPENAI_API_KEY="sk-bench",
        AIPIPE_OPENAI_BASE=f"http://{HOST}:{upstream_port}",
        AIPIPE_STORE_IDLE=f"{store_idle:g}",
    )
    if database_url:
        env["AIPIPE_DATABASE_URL"] = database_url
    return env


def aipipe_command() -> list[str]:
    script = Path(sys.executable).parent / "aipipe"
    return [str(script)] if script.exists() else [sys.executable, "-m", "relay"]


def mint_token(env: dict[str, str]) -> str:
    out = subprocess.run(
        [*aipipe_command(), "token", EMAIL], env=env, capture_output=True, text=True, check=True
    )
    return out.stdout.strip()


def start_relay(
    port: int, env: dict[str, str], token: str, log_path: Path, core: int = RELAY_CORE
) -> tuple[RelayProcess, float]:
    """Start `aipipe serve`; returns the process and seconds to its first answered chat call."""
    started = time.perf_counter()
    relay = RelayProcess(env, port=port, log=log_path, prefix=tuple(pinned(core, [])))
    try:
        answered = wait_for_answer(HOST, port, "POST", RELAY_CHAT, _headers(token), BODY % b"")
    except BaseException:
        relay.stop(timeout=10)
        raise
    return relay, answered - started


def stop(proc: subprocess.Popen) -> None:
    stop_process(proc, timeout=10)


def cpu_seconds(pid: int) -> float:
    """utime + stime of the process (all threads) and of its children: the live ones (the store
    worker) and the ended ones it has reaped (cutime + cstime), from /proc/<pid>/stat."""
    ticks = sum(_stat_fields(pid)[11:15])  # fields 14-17 of stat(5): utime stime cutime cstime
    for child in children(pid):
        with contextlib.suppress(OSError):  # it may end while we look: then the parent counts it
            ticks += sum(_stat_fields(child)[11:13])
    return ticks / TICK


def _stat_fields(pid: int) -> list[int]:
    """/proc/<pid>/stat after the command name, numbers only (field 3 is the state letter)."""
    rest = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return [0, *(int(f) for f in rest[1:])]


def children(pid: int) -> list[int]:
    """Live child processes (the relay's store worker)."""
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            found += [int(c) for c in (task / "children").read_text().split()]
    return found


def tree_rss_mb(pid: int) -> float:
    """RSS of the process plus its live children's."""
    return rss_mb(pid) + sum(rss_mb(child) for child in children(pid))


def postgres_cpu_seconds(postmaster: int | None) -> float:
    """utime + stime of the PostgreSQL server: the postmaster's live children (backends, WAL
    writer, ...) and the ended ones it reaped."""
    if postmaster is None:
        return 0.0
    ticks = sum(_stat_fields(postmaster)[11:15])
    for child in children(postmaster):
        with contextlib.suppress(OSError):
            ticks += sum(_stat_fields(child)[11:13])
    return ticks / TICK


def core_busy_seconds(core: int) -> float:
    """Time the core spent on any process (user+nice+system+irq+softirq+steal), /proc/stat."""
    for line in Path("/proc/stat").read_text().splitlines():
        if line.startswith(f"cpu{core} "):
            ticks = [int(v) for v in line.split()[1:]]
            return (sum(ticks[:3]) + sum(ticks[5:8])) / TICK
    return float("nan")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def private_mb(pid: int) -> float:
    """Anonymous (private, dirty) memory: RSS minus mapped library and file pages, which other
    processes share."""
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return float("nan")
    for line in text.splitlines():
        if line.startswith("Anonymous:"):
            return int(line.split()[1]) / 1024
    return float("nan")


# -- load -------------------------------------------------------------------------------------
def run_wrk(url: str, conns: int, duration: float, stream: bool, token: str) -> WrkResult:
    env = dict(os.environ, BENCH_TOKEN=token, BENCH_STREAM="1" if stream else "0")
    argv = pinned(
        LOAD_CORE,
        ["wrk", "-t1", f"-c{conns}", f"-d{max(1, round(duration))}s", "--timeout", "10s", "--latency",
         "-s", str(LUA), url],
    )
    out = subprocess.run(argv, env=env, capture_output=True, text=True, check=True).stdout
    return parse_wrk(out)


def parse_wrk(output: str) -> WrkResult:
    """Read the `BENCH_JSON {...}` line that bench/wrk/chat.lua prints when wrk is done."""
    line = next((ln for ln in output.splitlines() if ln.startswith("BENCH_JSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no BENCH_JSON line:\n{output}")
    data = json.loads(line.removeprefix("BENCH_JSON "))
    seconds = data["duration_us"] / 1e6
    errors = sum(data[k] for k in ("connect", "read", "write", "status", "timeout"))
    return WrkResult(
        requests=data["requests"],
        seconds=seconds,
        rps=data["requests"] / seconds if seconds else 0.0,
        p50_ms=data["p50_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        errors=errors,
    )


def probe(port: int, path: str, token: str, stream: bool, count: int, gap_ms: int = 0) -> list[float]:
    """Sequential calls on one kept-alive connection: seconds to the first body chunk of each."""
    headers = _headers(token)
    if gap_ms:
        headers["x-bench-gap-ms"] = str(gap_ms)  # the relay forwards it; the fake spaces chunks
    body = BODY % (b',"stream":true' if stream else b"")
    times = []
    with Connection(HOST, port) as conn:
        for _ in range(count):
            answer = conn.request("POST", path, headers, body)
            if answer.status != 200:
                raise RuntimeError(f"{path} answered {answer.status}: {answer.body[:300]!r}")
            times.append(answer.first_chunk_s)
    return times


def _headers(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}", "content-type": "application/json"}


# -- the run ----------------------------------------------------------------------------------
def bench(
    duration: float,
    conns: list[int],
    probes: int,
    modes: list[str],
    store_idle: float | None = None,
    postgres: PostgresServer | None = None,
) -> Report:
    # The store worker must outlive the direct runs between relayed ones (steady traffic keeps it
    # up in production too); the idle figure is taken once it has stopped after start-up.
    store_idle = store_idle if store_idle is not None else duration + 10
    report = Report(
        machine=_machine(), load_before=_loadavg(), duration=duration, store_idle_s=store_idle,
        store="postgresql" if postgres else "duckdb",
    )
    database_url = create_database(postgres.url) if postgres else None
    postmaster = postgres.pid() if postgres else None
    with tempfile.TemporaryDirectory(prefix="aipipe-bench-") as tmp:
        data_dir = Path(tmp)
        up_port, relay_port = free_port(), free_port()
        upstream = start_upstream(up_port)
        relay = None
        try:
            env = relay_env(data_dir, up_port, store_idle, database_url)
            token = mint_token(env)
            startups = []
            for _ in range(STARTS):  # the median of a few starts: one can land on a busy moment
                if relay is not None:
                    relay.stop(timeout=10)
                relay, took = start_relay(relay_port, env, token, data_dir / "relay.log")
                startups.append(took)
            report.startup_s = statistics.median(startups)
            time.sleep(1.0)
            report.rss_worker_mb = sum(rss_mb(child) for child in children(relay.pid))
            deadline = time.monotonic() + store_idle + 10
            while children(relay.pid) and time.monotonic() < deadline:
                time.sleep(0.2)
            if children(relay.pid):
                raise RuntimeError("the store worker did not stop when idle")
            time.sleep(0.5)
            report.rss_idle_mb = rss_mb(relay.pid)
            report.private_idle_mb = private_mb(relay.pid)
            report.probe = _probes(up_port, relay_port, token, probes)
            direct_url = f"http://{HOST}:{up_port}{CHAT}"
            relay_url = f"http://{HOST}:{relay_port}{RELAY_CHAT}"
            for mode in modes:
                stream = mode == "stream"
                run_wrk(relay_url, 16, min(1.0, duration), stream, token)  # warm up
                for c in conns:
                    direct = run_wrk(direct_url, c, duration, stream, "sk-bench")
                    before, busy = cpu_seconds(relay.pid), core_busy_seconds(RELAY_CORE)
                    db_before = postgres_cpu_seconds(postmaster)
                    through = run_wrk(relay_url, c, duration, stream, token)
                    cpu = cpu_seconds(relay.pid) - before
                    db = postgres_cpu_seconds(postmaster) - db_before
                    others = core_busy_seconds(RELAY_CORE) - busy - cpu - db
                    n = through.requests or 1
                    report.rows.append(
                        Row(mode, c, direct, through, cpu * 1000 / n,
                            max(0.0, others) * 100 / through.seconds, db * 1000 / n)
                    )
                    print(_row_line(report.rows[-1]), file=sys.stderr, flush=True)
            time.sleep(1.0)
            report.rss_after_mb = tree_rss_mb(relay.pid)
            recorded = _recorded(relay_port, token)
        finally:
            if relay is not None:
                relay.stop(timeout=10)
            stop(upstream)
        log = (data_dir / "relay.log").read_text()
        lines = sum("aipipe.requests" in line for line in log.splitlines())
        report.log_lines_per_request = lines / recorded if recorded else 0.0
    report.load_after = _loadavg()
    return report


def _recorded(port: int, token: str) -> int:
    """Ledger rows the relay has recorded (written + waiting for the next flush)."""
    with Connection(HOST, port) as conn:
        health = json.loads(conn.request("GET", "/healthz").body)
    return int(health["rows_written"]) + int(health["pending_rows"])


def _probes(up_port: int, relay_port: int, token: str, count: int) -> dict[str, float]:
    """p50 of one call (JSON) and of the time to first chunk (stream, chunks 20 ms apart)."""
    out: dict[str, float] = {}
    for name, port, path, tok in (
        ("direct", up_port, CHAT, "sk-bench"),
        ("relay", relay_port, RELAY_CHAT, token),
    ):
        probe(port, path, tok, False, 50)  # warm up connections and caches
        out[f"{name}_json_p50_ms"] = percentile(probe(port, path, tok, False, count), 50) * 1000
        out[f"{name}_ttfc_p50_ms"] = (
            percentile(probe(port, path, tok, True, max(10, count // 10), gap_ms=20), 50) * 1000
        )
    out["added_json_p50_ms"] = out["relay_json_p50_ms"] - out["direct_json_p50_ms"]
    out["added_ttfc_p50_ms"] = out["relay_ttfc_p50_ms"] - out["direct_ttfc_p50_ms"]
    return out


# -- the report -------------------------------------------------------------------------------
def render(report: Report) -> str:
    if report.store == "postgresql":
        return render_postgres(report)
    p = report.probe
    out = [
        "# Relay benchmark — latest run",
        "",
        f"Machine: {report.machine}. Load average before / after: {report.load_before} / "
        f"{report.load_after}. Each wrk run: {report.duration:g} s, one wrk thread.",
        "Pinning: wrk + fake upstream on core 0, the relay (and its store worker) on core 1. "
        "Token check, budget "
        "check and cost recording (DuckDB ledger) on for every relayed call. "
        "Stream = 20 SSE content chunks + usage chunk.",
        "",
        "| call | conns | direct req/s | direct p50 / p99 ms | relay req/s | relay p50 / p99 ms "
        "| added p50 ms | relay CPU ms/req | req/s per core¹ | other load on relay core² |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in report.rows:
        out.append(_row_line(row))
    out += [
        "",
        "¹ 1000 / relay CPU ms per request: what one core serves when the relay has it to itself. "
        "² CPU time other processes took on the relay's core during the run (a shared machine "
        "lowers the measured req/s and raises the tail latencies; the CPU cost per request is "
        "what the relay itself spends).",
        "",
        *_probe_lines(p),
        "",
        f"Relay start-up to first answered chat call: **{report.startup_s:.2f} s** (median of {STARTS}). "
        f"RSS idle (store worker stopped after {report.store_idle_s:g} s without ledger work): "
        f"**{report.rss_idle_mb:.1f} MB** (private: {report.private_idle_mb:.1f} MB); the store worker "
        f"(DuckDB) adds {report.rss_worker_mb:.1f} MB while it runs; relay + worker after the load: "
        f"{report.rss_after_mb:.1f} MB. "
        f"Request log lines per relayed call: {report.log_lines_per_request:.2f}.",
        "",
        "## Goals (issue 5)",
        "",
        "| goal | measured | |",
        "|---|---:|---|",
    ]
    for goal, value, ok in _goals(report):
        out.append(f"| {goal} | {value} | {'met' if ok else '**missed**'} |")
    return "\n".join(out) + "\n"


def _probe_lines(p: dict[str, float]) -> list[str]:
    return [
        "| single connection, sequential (p50) | direct | relay | added |",
        "|---|---:|---:|---:|",
        f"| non-stream call | {p.get('direct_json_p50_ms', 0):.3f} ms | "
        f"{p.get('relay_json_p50_ms', 0):.3f} ms | {p.get('added_json_p50_ms', 0):+.3f} ms |",
        f"| time to first chunk (stream) | {p.get('direct_ttfc_p50_ms', 0):.3f} ms | "
        f"{p.get('relay_ttfc_p50_ms', 0):.3f} ms | {p.get('added_ttfc_p50_ms', 0):+.3f} ms |",
    ]


def render_postgres(report: Report) -> str:
    """The same run on the PostgreSQL store: the database's CPU per call beside the relay's."""
    p = report.probe
    out = [
        "## PostgreSQL store (AIPIPE_DATABASE_URL)",
        "",
        f"Load average before / after: {report.load_before} / {report.load_after}. "
        "PostgreSQL (a throwaway cluster, fsync on, default settings) pinned to the relay's core 1: "
        "the relay and its database share one core. Every relayed call is admitted and settled in "
        "the database (reservation, spend, ledger row).",
        "",
        "| call | conns | direct req/s | relay req/s | relay p50 / p99 ms | added p50 ms "
        "| relay CPU ms/req | PostgreSQL CPU ms/req | relay + DB ms/req | req/s per core¹ |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in report.rows:
        d, r = row.direct, row.relay
        errors = f" ({r.errors} errors)" if r.errors else ""
        out.append(
            f"| {'non-stream' if row.mode == 'json' else 'stream'} | {row.conns} | {d.rps:,.0f} | "
            f"{r.rps:,.0f}{errors} | {r.p50_ms:.2f} / {r.p99_ms:.2f} | {r.p50_ms - d.p50_ms:+.2f} | "
            f"{row.relay_cpu_ms:.3f} | {row.db_cpu_ms:.3f} | {row.relay_cpu_ms + row.db_cpu_ms:.3f} "
            f"| {row.capacity:,.0f} |"
        )
    out += [
        "",
        "¹ 1000 / (relay + PostgreSQL CPU ms per request).",
        "",
        *_probe_lines(p),
        "",
        f"Relay start-up to first answered chat call: {report.startup_s:.2f} s. "
        f"RSS idle: {report.rss_idle_mb:.1f} MB.",
        "",
        "### Goals (issue 15)",
        "",
        "| goal | measured | |",
        "|---|---:|---|",
    ]
    added = p.get("added_json_p50_ms", 99)
    goals = [(f"≤ +{GOAL_PG_ADDED_P50_MS} ms added p50, 1 connection, non-stream",
              f"{added:+.3f} ms", added <= GOAL_PG_ADDED_P50_MS)]
    for row in report.rows:
        if row.mode == "json":
            cpu = row.relay_cpu_ms + row.db_cpu_ms
            goals.append((f"relay + DB CPU ≤ {GOAL_PG_CPU_MS:g} ms per non-stream call, "
                          f"{row.conns} conns", f"{cpu:.3f} ms", cpu <= GOAL_PG_CPU_MS))
    for goal, value, ok in goals:
        out.append(f"| {goal} | {value} | {'met' if ok else '**missed**'} |")
    return "\n".join(out) + "\n"


def _goals(report: Report) -> list[tuple[str, str, bool]]:
    p = report.probe
    rows = {(r.mode, r.conns): r for r in report.rows}
    goals = [
        ("≤ 1 ms added p50, 1 connection, non-stream", f"{p.get('added_json_p50_ms', 0):+.3f} ms",
         p.get("added_json_p50_ms", 99) <= GOAL_ADDED_P50_MS),
        ("≤ 1 ms added time to first chunk", f"{p.get('added_ttfc_p50_ms', 0):+.3f} ms",
         p.get("added_ttfc_p50_ms", 99) <= GOAL_ADDED_TTFC_MS),
    ]
    for mode, goal, name in (
        ("json", GOAL_JSON_RPS_64, "≥ 1,200 non-stream req/s at 64 connections"),
        ("stream", GOAL_STREAM_RPS_64, "≥ 400 streams/s at 64 connections"),
    ):
        if (mode, 64) in rows:
            row = rows[mode, 64]
            shown = f"{row.relay.rps:,.0f} (per core¹: {row.capacity:,.0f})"
            goals.append((name, shown, row.relay.rps >= goal))
    goals += [
        ("idle RSS ≤ 80 MB", f"{report.rss_idle_mb:.1f} MB", report.rss_idle_mb <= GOAL_RSS_MB),
        ("start-up to first answered request ≤ 1 s", f"{report.startup_s:.2f} s",
         report.startup_s <= GOAL_STARTUP_S),
    ]
    return goals


def _row_line(row: Row) -> str:
    d, r = row.direct, row.relay
    errors = f" ({r.errors} errors)" if r.errors else ""
    return (
        f"| {'non-stream' if row.mode == 'json' else 'stream'} | {row.conns} | {d.rps:,.0f} | "
        f"{d.p50_ms:.2f} / {d.p99_ms:.2f} | {r.rps:,.0f}{errors} | {r.p50_ms:.2f} / {r.p99_ms:.2f} | "
        f"{r.p50_ms - d.p50_ms:+.2f} | {row.relay_cpu_ms:.3f} | {row.capacity:,.0f} | "
        f"{row.core_other_pct:.0f}% |"
    )


def _machine() -> str:
    cpu = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    return f"{os.cpu_count()} × {cpu}, Python {platform.python_version()}, {platform.system()}"


def _loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per wrk run")
    parser.add_argument("--conns", default="1,16,64", help="connection counts, comma-separated")
    parser.add_argument("--modes", default="json,stream", help="json and/or stream")
    parser.add_argument("--probes", type=int, default=500, help="sequential calls per latency probe")
    parser.add_argument("--stores", default="duckdb,postgresql", help="duckdb and/or postgresql")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        print("bench: wrk is not installed (apt-get install -y wrk)", file=sys.stderr)
        return 2
    os.sched_setaffinity(0, {LOAD_CORE})  # this script's probes are load too
    conns, modes = [int(c) for c in args.conns.split(",")], args.modes.split(",")
    reports = []
    for store in args.stores.split(","):
        if store == "postgresql":
            server = pinned_postgres(RELAY_CORE)
            try:
                reports.append(bench(args.duration, conns, args.probes, modes, postgres=server))
            finally:
                server.remove()
        else:
            reports.append(bench(args.duration, conns, args.probes, modes))
    text = "\n".join(render(report) for report in reports)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    args.out.with_suffix(".json").write_text(json.dumps([asdict(r) for r in reports], indent=1))
    if args.out == DEFAULT_OUT:  # a real run (not a smoke test): the figures the docs show
        place("run", text)
    print(text)
    return 0


def pinned_postgres(core: int) -> PostgresServer:
    """A throwaway PostgreSQL server (fsync on, as a real one) whose processes run on `core`."""
    server = PostgresServer(fsync=True).init().start()
    postmaster = server.pid()
    if postmaster is not None and shutil.which("taskset"):
        for pid in [postmaster, *children(postmaster)]:  # later backends inherit it
            subprocess.run(["taskset", "-a", "-p", "-c", str(core), str(pid)],
                           capture_output=True, check=False)
    return server


if __name__ == "__main__":
    sys.exit(main())
