"""Relay CPU per call, this checkout against another commit, in one run: did the hot path get slower?

Both relays run the same harness as bench/run.py (fake upstream and wrk on core 0, the relay alone
on core 1, token + budget + pricing + DuckDB ledger on every call). The baseline's `relay/` is
exported from git into a temporary directory and put first on PYTHONPATH; everything else — the
fake upstream, wrk, this script — is shared. Runs alternate (baseline, candidate, baseline, …) so
drift in the machine's load hits both, and the report gives the median of each and their ratio.

Run: `.venv/bin/python bench/compare.py --baseline main` (writes bench/results/compare.md).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):  # `python bench/compare.py`: make `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.run import (
    HOST,
    LOAD_CORE,
    RELAY_CHAT,
    RELAY_CORE,
    cpu_seconds,
    free_port,
    mint_token,
    pinned,
    relay_env,
    run_wrk,
    start_upstream,
    stop,
)
from testkit.relay_process import RelayProcess

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def export(ref: str, into: Path) -> str:
    """`relay/` as of `ref` into `into`; returns the commit's short hash."""
    commit = subprocess.run(
        ["git", "rev-parse", "--short", ref], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()
    archive = subprocess.run(["git", "archive", commit, "relay"], cwd=ROOT, capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    return commit


def measure(
    tree: Path, env: dict[str, str], token: str, modes: list[str], conns: int, duration: float, log: Path
) -> dict[str, tuple[float, float]]:
    """Start the relay from `tree`, warm it up, and return {mode: (CPU ms per call, req/s)}."""
    port = free_port()
    relay = RelayProcess(
        {**env, "PYTHONPATH": str(tree)}, port=port, log=log, prefix=tuple(pinned(RELAY_CORE, []))
    ).wait_ready()
    try:
        url = f"http://{HOST}:{port}{RELAY_CHAT}"
        out = {}
        for mode in modes:
            stream = mode == "stream"
            run_wrk(url, conns, 1.0, stream, token)  # warm up: caches, pooled connections, worker
            before = cpu_seconds(relay.pid)
            result = run_wrk(url, conns, duration, stream, token)
            cpu = cpu_seconds(relay.pid) - before
            if result.errors:
                raise RuntimeError(f"{tree}: {result.errors} errors under load")
            out[mode] = (cpu * 1000 / result.requests, result.rps)
        return out
    finally:
        relay.stop(timeout=15)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--baseline", default="main", help="git ref to compare against")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=8.0, help="seconds per wrk run")
    parser.add_argument("--conns", type=int, default=16)
    parser.add_argument("--modes", default="json,stream")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "compare.md")
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        print("bench: wrk is not installed (apt-get install -y wrk)", file=sys.stderr)
        return 2
    os.sched_setaffinity(0, {LOAD_CORE})
    modes = args.modes.split(",")
    runs: Runs = {"baseline": {}, "candidate": {}}
    with tempfile.TemporaryDirectory(prefix="aipipe-compare-") as tmp:
        work = Path(tmp)
        (work / "baseline").mkdir()
        commit = export(args.baseline, work / "baseline")
        trees = {"baseline": work / "baseline", "candidate": ROOT}
        up_port = free_port()
        upstream = start_upstream(up_port)
        try:
            env = relay_env(work, up_port, store_idle=60)
            token = mint_token(env)
            for n in range(args.rounds):
                order = ["baseline", "candidate"] if n % 2 == 0 else ["candidate", "baseline"]
                for name in order:
                    got = measure(trees[name], env, token, modes, args.conns, args.duration,
                                  work / f"{name}-{n}.log")
                    for mode, value in got.items():
                        runs[name].setdefault(mode, []).append(value)
                    print(f"round {n + 1} {name}: " + ", ".join(
                        f"{m} {cpu:.3f} ms/call {rps:,.0f} req/s" for m, (cpu, rps) in got.items()
                    ), file=sys.stderr, flush=True)
        finally:
            stop(upstream)
    text = render(runs, commit, args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(text)
    return 0


Runs = dict[str, dict[str, list[tuple[float, float]]]]  # side -> mode -> [(CPU ms/call, req/s)]


def render(runs: Runs, commit: str, args: argparse.Namespace) -> str:
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                          text=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "relay"], cwd=ROOT, capture_output=True,
                           text=True).stdout.strip()
    lines = [
        "# Relay CPU per call: this checkout vs a baseline, same run",
        "",
        f"Baseline `{args.baseline}` ({commit}); candidate {head}"
        f"{' + uncommitted changes' if dirty else ''}. "
        f"{args.rounds} alternating rounds per side, wrk {args.duration:g} s at {args.conns} connections, "
        f"relay pinned to core {RELAY_CORE}. {time.strftime('%Y-%m-%d %H:%M')}, load "
        f"{' '.join(Path('/proc/loadavg').read_text().split()[:3])}.",
        "",
        "| call | baseline CPU ms/call (median; runs) | candidate CPU ms/call (median; runs) | ratio | "
        "baseline req/s | candidate req/s |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for mode in runs["baseline"]:
        base, cand = runs["baseline"][mode], runs["candidate"][mode]
        b = statistics.median(c for c, _ in base)
        c = statistics.median(c for c, _ in cand)
        name = "non-stream" if mode == "json" else "stream"
        lines.append(
            f"| {name} | {b:.3f} ({', '.join(f'{x:.3f}' for x, _ in base)}) "
            f"| {c:.3f} ({', '.join(f'{x:.3f}' for x, _ in cand)}) | {c / b:.3f} | "
            f"{statistics.median(r for _, r in base):,.0f} | {statistics.median(r for _, r in cand):,.0f} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
