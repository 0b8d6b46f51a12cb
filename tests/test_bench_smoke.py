"""The benchmark's pieces, run small and fast so the bench code does not rot."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator

import pytest

from bench import run
from bench.probe import Connection, percentile
from bench.upstream import CHUNKS
from tests.tools import need

BODY = b'{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]%b}'


@pytest.fixture(scope="module")
def upstream_port() -> Iterator[int]:
    port = run.free_port()
    proc = run.start_upstream(port)
    try:
        yield port
    finally:
        run.stop(proc)


def test_fake_upstream_answers_json_with_usage(upstream_port: int) -> None:
    """A non-stream call gets an OpenAI chat.completion with token usage."""
    with Connection("127.0.0.1", upstream_port) as conn:
        answer = conn.request("POST", run.CHAT, {"content-type": "application/json"}, BODY % b"")
    assert answer.status == 200
    data = json.loads(answer.body)
    assert data["object"] == "chat.completion"
    assert data["usage"]["completion_tokens"] == CHUNKS


def test_fake_upstream_streams_twenty_chunks_then_usage(upstream_port: int) -> None:
    """A stream asking for usage gets 20 content events, one usage event and [DONE], in order,
    and the kept-alive connection serves the next call too."""
    body = BODY % b',"stream":true,"stream_options":{"include_usage":true}'
    with Connection("127.0.0.1", upstream_port) as conn:
        for _ in range(2):
            answer = conn.request("POST", run.CHAT, {}, body)
            events = [e for e in answer.body.decode().split("\n\n") if e]
            assert answer.status == 200
            assert answer.headers["content-type"].startswith("text/event-stream")
            content = [e for e in events if '"content"' in e]
            assert len(content) == CHUNKS
            assert '"usage":{"prompt_tokens"' in events[-2]
            assert events[-1] == "data: [DONE]"


def test_fake_upstream_spaces_chunks_when_asked(upstream_port: int) -> None:
    """`x-bench-gap-ms` spaces the chunks: the first arrives long before the stream ends."""
    with Connection("127.0.0.1", upstream_port) as conn:
        answer = conn.request("POST", run.CHAT, {"x-bench-gap-ms": "5"}, BODY % b',"stream":true')
    assert answer.status == 200
    assert answer.total_s > 0.08  # 21 gaps of 5 ms
    assert answer.first_chunk_s < answer.total_s / 3


def test_parse_wrk_reads_the_lua_summary_line() -> None:
    """The runner reads requests, rate, percentiles and errors from the Lua `done` line."""
    out = (
        "Running 1s test\n  Latency Distribution\n"
        'BENCH_JSON {"requests":2000,"duration_us":2000000,"bytes":1,"connect":0,"read":1,'
        '"write":0,"status":2,"timeout":0,"p50_us":450,"p90_us":900,"p99_us":1500,'
        '"mean_us":500.0,"max_us":3000}\n'
    )
    result = run.parse_wrk(out)
    assert result.requests == 2000
    assert result.rps == pytest.approx(1000)
    assert (result.p50_ms, result.p99_ms) == (0.45, 1.5)
    assert result.errors == 3
    with pytest.raises(RuntimeError):
        run.parse_wrk("no summary")


def test_process_counters_read_proc() -> None:
    """CPU seconds and RSS come from /proc for any pid (here: this test process)."""
    before = run.cpu_seconds(os.getpid())
    sum(i * i for i in range(300_000))
    assert run.cpu_seconds(os.getpid()) >= before
    assert 5 < run.rss_mb(os.getpid()) < 10_000
    assert percentile([3.0, 1.0, 2.0], 50) == 2.0


def test_render_marks_goals_met_and_missed() -> None:
    """The report has the side-by-side table and says which goals were met."""
    fast = run.WrkResult(10_000, 10.0, 1_000.0, 0.5, 2.0, 0)
    report = run.Report(machine="test", load_before="0 0 0", load_after="0 0 0", duration=1,
                        startup_s=0.5, rss_idle_mb=100.0, rss_after_mb=110.0)
    report.rows = [run.Row("json", 64, fast, fast, 0.4), run.Row("stream", 64, fast, fast, 0.9)]
    report.probe = {"added_json_p50_ms": 0.3, "added_ttfc_p50_ms": 0.2}
    text = run.render(report)
    assert "| non-stream | 64 | 1,000 |" in text
    assert "| ≥ 1,200 non-stream req/s at 64 connections | 1,000 (per core¹: 2,500) | **missed** |" in text
    assert "| start-up to first answered request ≤ 1 s | 0.50 s | met |" in text
    assert "| idle RSS ≤ 80 MB | 100.0 MB | **missed** |" in text


@pytest.mark.slow
def test_a_tiny_full_run_relays_every_call(tmp_path) -> None:
    """One short run of the whole bench, on both stores: the relay starts, answers every wrk call
    without errors, records each call once in its log, and the report is written."""
    need(shutil.which("wrk") is not None, "Debian's wrk (bash scripts/setup.sh --browser)")
    out = tmp_path / "latest.md"
    proc = subprocess.run(
        [run.sys.executable, str(run.HERE / "run.py"), "--duration", "1", "--conns", "4",
         "--probes", "20", "--out", str(out)],
        capture_output=True, text=True, timeout=300, cwd=run.ROOT,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    reports = json.loads(out.with_suffix(".json").read_text())
    assert [r["store"] for r in reports] == ["duckdb", "postgresql"]
    for data in reports:
        assert [(r["mode"], r["conns"]) for r in data["rows"]] == [("json", 4), ("stream", 4)]
        for row in data["rows"]:
            assert row["relay"]["requests"] > 0 and row["relay"]["errors"] == 0
            assert row["relay_cpu_ms"] > 0
        assert data["startup_s"] > 0 and data["rss_idle_mb"] > 0
        assert data["log_lines_per_request"] == pytest.approx(1.0, abs=0.05)
    assert all(row["db_cpu_ms"] > 0 for row in reports[1]["rows"])  # the database's share
    text = out.read_text()
    assert "## Goals (issue 5)" in text and "### Goals (issue 15)" in text


def test_ledger_scale_builds_and_measures_a_small_ledger(tmp_path) -> None:
    """The ledger-scale script writes N rows with their daily totals, then measures the budget
    check, /usage and the DuckDB-backed endpoints on it (here 5,000 rows)."""
    from bench import ledger_scale
    from relay.store import Store

    path = tmp_path / "aipipe.duckdb"
    ledger_scale.build_ledger(path, 5_000, users=50, days=30)
    store = Store(path).open(background=False)
    try:
        assert store.query("SELECT count(*) FROM requests")[0][0] == 5_000
        assert store.query("SELECT count(*) FROM daily")[0][0] == 50 * 30
    finally:
        store.close()
    result = ledger_scale.measure(path, users=50, days=30)
    for key in ("open_s", "budget_ms", "usage_ms", "recent_ms", "admin_usage_ms", "flush_1000_ms"):
        assert result[key] > 0, key
    text = ledger_scale.render([(5_000, 1.0, 0.1, result)], 50, 30)
    assert "| 5,000 |" in text
