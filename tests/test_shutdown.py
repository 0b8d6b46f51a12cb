"""Shutdown and crashes, on a real `python -m relay serve` process: SIGTERM stops new connections,
lets in-flight streams finish within the grace period and flushes the ledger; SIGKILL loses at
most the last flush interval, never corrupts the file, and a restart picks up where it was."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from bench.kill_test import kill_test, ledger, relay_env, token_for
from bench.run import children
from testkit.fakes.server import serve_asgi
from testkit.fakes.upstream import create_fake_upstream
from testkit.relay_process import RelayProcess
from tests.conftest import provider_part

STOPPED = (0, -signal.SIGTERM)  # uvicorn drains, runs the lifespan, then re-raises SIGTERM


@pytest.fixture(scope="module")
def upstream() -> Iterator[str]:
    with serve_asgi(create_fake_upstream()) as url:
        yield url


def chat(origin: str, stream: bool = True) -> dict:
    return {"model": "gpt-4o-mini", "stream": stream,
            "messages": [{"role": "user", "content": f"story {origin}"}]}


class Stream(threading.Thread):
    """A streamed call in the background: records its first chunk and its whole text."""

    def __init__(self, url: str, token: str, origin: str, chunks: int, delay_ms: int):
        super().__init__(daemon=True)
        self.args = (url, token, origin, chunks, delay_ms)
        self.first = threading.Event()
        self.text = ""
        self.error: Exception | None = None

    def run(self) -> None:
        url, token, origin, chunks, delay = self.args
        headers = {"authorization": f"Bearer {token}", "origin": origin, "x-fake": "slow",
                   "x-fake-chunks": str(chunks), "x-fake-delay": str(delay)}
        try:
            with httpx.stream("POST", f"{url}/openai/v1/chat/completions", json=chat(origin),
                              headers=headers, timeout=60) as r:
                for text in r.iter_text():
                    self.text += text
                    self.first.set()
        except httpx.HTTPError as e:
            self.error = e
        finally:
            self.first.set()


def _wait(condition: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def _refuses_connections(url: str, timeout: float = 5) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            httpx.get(f"{url}/healthz", timeout=0.5)
        except httpx.ConnectError:
            return True
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    return False


@pytest.mark.parametrize("whole_group", [False, True], ids=["relay", "process-group"])
def test_sigterm_lets_streams_finish_and_flushes_the_ledger(
    upstream, tmp_path: Path, whole_group: bool
) -> None:
    """On SIGTERM the relay stops accepting connections at once, lets three in-flight streams
    run to [DONE], writes their rows (the flush interval is 60 s, so only the shutdown flush can
    have written them) and exits; a restart on the same file serves and reports the same spend.
    A service manager or Ctrl-C signals the whole process group: the store worker must outlive
    the signal until the relay's last flush has landed."""
    env = relay_env(tmp_path / "data", upstream, flush_seconds=60)
    relay = RelayProcess(env, "--grace", "15").wait_ready()
    token = token_for(env)
    streams = [Stream(relay.url, token, f"term-{i}", chunks=8, delay_ms=300) for i in range(3)]
    for s in streams:
        s.start()
    for s in streams:
        assert s.first.wait(10)
    (worker,) = children(relay.proc.pid)  # the store worker, started to load the mirror
    if whole_group:
        os.killpg(relay.proc.pid, signal.SIGTERM)
    else:
        relay.proc.send_signal(signal.SIGTERM)
    assert _refuses_connections(relay.url)
    # Once every stream has moved on since the signal, the worker has had it too: still there.
    sizes = [len(s.text) for s in streams]
    _wait(lambda: all(len(s.text) > n for s, n in zip(streams, sizes, strict=True)), 10)
    assert worker in children(relay.proc.pid)
    for s in streams:
        s.join(20)
        assert s.error is None and provider_part(s.text).endswith("data: [DONE]")
    assert relay.proc.wait(timeout=20) in STOPPED
    rows, mismatched = ledger(tmp_path / "data")
    assert {o: out for o, (out, _) in rows.items()} == {f"term-{i}": "ok" for i in range(3)}
    assert mismatched == []
    spent = sum((c for _, c in rows.values()), Decimal(0))
    output = relay.output()
    assert token not in output and env["OPENAI_API_KEY"] not in output
    assert sum(1 for line in output.splitlines() if '"aipipe.requests"' in line) >= 3

    again = RelayProcess(env).wait_ready()
    try:
        usage = httpx.get(f"{again.url}/usage", headers={"authorization": f"Bearer {token}"}).json()
        assert Decimal(str(usage["cost"])) == pytest.approx(spent, abs=Decimal("1e-9"))
    finally:
        assert again.stop() in STOPPED


def test_sigterm_cuts_streams_that_outlast_the_grace_period(upstream, tmp_path: Path) -> None:
    """A stream longer than the grace period is cut when it ends; the process still exits
    promptly and the cut stream is still recorded, with a cost."""
    env = relay_env(tmp_path / "data", upstream, flush_seconds=60)
    relay = RelayProcess(env, "--grace", "1").wait_ready()
    stream = Stream(relay.url, token_for(env), "long", chunks=40, delay_ms=250)
    stream.start()
    assert stream.first.wait(10)
    started = time.monotonic()
    relay.proc.send_signal(signal.SIGTERM)
    assert relay.proc.wait(timeout=20) in STOPPED
    assert time.monotonic() - started < 8
    stream.join(10)
    assert "[DONE]" not in stream.text
    rows, _ = ledger(tmp_path / "data")
    outcome, cost = rows["long"]
    assert outcome in ("aborted", "broken") and cost > 0


def test_sigkill_mid_load_loses_at_most_one_flush_interval(upstream, tmp_path: Path) -> None:
    """SIGKILL under load: only calls answered within the last flush interval may be missing,
    day totals still match the rows (never a half-written batch), and a restart on the same
    file serves and shows the ledger's spend."""
    report = kill_test(upstream, tmp_path, seconds=2, workers=8, flush_seconds=0.3)
    assert report.answered > 50, json.dumps(report.__dict__)
    assert report.lost_within_flush_window, report
    assert report.lost <= report.answered * (0.3 + 0.5) / 2 + 1
    assert report.day_totals_consistent and report.restart_ok and report.spend_after_restart_matches
