"""The store worker: DuckDB in a child process that runs only while there is ledger work."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from relay.clock import utc_today
from relay.store import LedgerError, Store, StoreLocked
from relay.store.duckdb_ledger import LedgerDB
from relay.store.worker import LedgerProcess
from testkit.relay_process import clean_env, serve_relay
from tests.test_store import row

ROOT = Path(__file__).resolve().parent.parent


def wait_for(check, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie still answers kill(0): read its state
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"


def worker_store(path: Path, idle: float = 60.0, **kw: object) -> Store:
    return Store(path, worker_idle=idle, flush_seconds=0.05, **kw).open()  # type: ignore[arg-type]


def test_rows_go_through_the_worker_and_survive_a_reopen(tmp_path: Path) -> None:
    path = tmp_path / "u.duckdb"
    store = worker_store(path)
    assert store.worker() == "running"  # it loaded the mirror at open
    pid = store.ledger.pid  # type: ignore[attr-defined]
    assert pid != os.getpid() and alive(pid)
    store.record(row(cost="0.25"))
    store.record(row(email="b@x.org", cost="0.5"))
    assert store.query("SELECT email, cost FROM requests ORDER BY email") == [
        ("a@x.org", Decimal("0.25")),
        ("b@x.org", Decimal("0.5")),
    ]
    store.close()
    assert not alive(pid)  # closing the store ends the worker
    again = worker_store(path)
    assert again.spend("a@x.org", 7) == Decimal("0.25")  # the mirror came back from the file
    assert again.query("SELECT count(*) FROM requests") == [(2,)]
    again.close()


def test_idle_worker_stops_and_restarts_on_demand(tmp_path: Path) -> None:
    store = worker_store(tmp_path / "u.duckdb", idle=0.3)
    process = store.ledger
    first = process.pid  # type: ignore[attr-defined]
    store.record(row(cost="1"))
    wait_for(lambda: store.worker() == "stopped")
    assert not alive(first)
    assert store.pending() == 0 and store.rows_written == 1  # written before it stopped
    assert store.spend("a@x.org", 1) == Decimal(1)  # budgets read memory: no worker needed
    store.record(row(cost="2"))
    assert store.query("SELECT sum(cost) FROM requests") == [(Decimal(3),)]  # started again
    assert process.starts == 2  # type: ignore[attr-defined]
    store.close()


def test_the_file_stays_owned_while_the_worker_sleeps(tmp_path: Path) -> None:
    """No other process may take the file while the relay's worker is stopped."""
    path = tmp_path / "u.duckdb"
    store = worker_store(path, idle=0.1)
    wait_for(lambda: store.worker() == "stopped")
    probe = subprocess.run(
        [sys.executable, "-c",
         "import sys\nfrom pathlib import Path\nfrom relay.store import Store, StoreLocked\n"
         f"try:\n    Store(Path({str(path)!r})).open(background=False)\n"
         "except StoreLocked as e:\n    print('locked:', e)\n    sys.exit(3)\n"],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )
    assert probe.returncode == 3, probe.stderr
    assert "in use by another process" in probe.stdout
    store.close()
    Store(path).open(background=False).close()  # free again once the relay's store closed


def test_a_killed_worker_loses_no_row_and_doubles_none(tmp_path: Path) -> None:
    store = Store(tmp_path / "u.duckdb", worker_idle=60).open(background=False)
    store.record(row(cost="1"))
    store.flush()
    worker = store.ledger.pid  # type: ignore[attr-defined]
    os.kill(worker, signal.SIGKILL)
    wait_for(lambda: _threads(worker) <= 1)  # its pipe is closed: the next write meets EPIPE
    store.record(row(cost="2"))
    with pytest.raises(LedgerError, match="store worker stopped"):
        store.flush()
    assert store.pending() == 1  # kept for the next try
    assert store.flush() == 1  # a new worker took it
    assert store.query("SELECT count(*), sum(cost) FROM requests") == [(2, Decimal(3))]
    assert store.query("SELECT cost FROM daily") == [(Decimal(3),)]
    store.close()


def test_a_batch_retried_after_its_commit_is_not_applied_twice(tmp_path: Path) -> None:
    """The worker can die after COMMIT and before it answers: the retry must be a no-op."""
    db = LedgerDB(tmp_path / "u.duckdb")
    db.open(None)
    today = utc_today()
    days = {("a@x.org", today): ("add", Decimal(1))}
    columns = [[v] for v in (
        "id1", row().ts, today, "a@x.org", "openai", "/v1/chat/completions", "m", 200, "ok",
        1, 1, 0, 0, Decimal(1), "computed", 1.0, False, "",
    )]
    assert db.write("batch-1", columns, days) is True
    assert db.write("batch-1", columns, days, retry=True) is False
    assert db.write("batch-2", columns, days, retry=True) is True  # another batch is applied
    assert db.query("SELECT count(*) FROM requests") == [(2,)]
    assert db.query("SELECT cost FROM daily") == [(Decimal(2),)]
    db.close()


def test_worker_ignores_interrupts_and_ends_with_its_relay(tmp_path: Path) -> None:
    """Ctrl-C and SIGTERM reach the whole process group: the worker must outlive them until
    the relay is done with it. A relay killed outright closes the pipe, and the worker exits."""
    path = tmp_path / "u.duckdb"
    script = (
        "import sys, time\nfrom pathlib import Path\nfrom relay.store import Store\n"
        "from tests.test_store import row\n"
        f"s = Store(Path({str(path)!r}), worker_idle=60).open(background=False)\n"
        "s.record(row(cost='1')); s.flush()\n"
        "print(s.ledger.pid, flush=True)\ntime.sleep(60)\n"
    )
    relay = subprocess.Popen(
        [sys.executable, "-c", script], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    try:
        assert relay.stdout is not None
        worker = int(relay.stdout.readline())
        # Ignored, not handled later: the kernel shows both in the worker's ignored-signal mask.
        assert _ignored(worker) >= {signal.SIGINT, signal.SIGTERM}
        os.kill(worker, signal.SIGINT)
        os.kill(worker, signal.SIGTERM)
        assert alive(worker)
        relay.kill()
        relay.wait()
        wait_for(lambda: not alive(worker))
    finally:
        relay.kill()
        relay.wait()
    check = Store(path).open(background=False)
    assert check.query("SELECT count(*) FROM requests") == [(1,)]
    check.close()


def test_locked_file_fails_the_worker_start_clearly(tmp_path: Path) -> None:
    """A DuckDB lock held by a process outside AI Pipe (a notebook) stops start-up by name."""
    path = tmp_path / "u.duckdb"
    holder = _hold_duckdb_lock(path)
    try:
        with pytest.raises(StoreLocked, match="in use by another process"):
            worker_store(path)
    finally:
        holder.kill()
        holder.wait()
    store = worker_store(path)  # the lock file was released by the failed open
    store.close()


def test_idle_relay_drops_duckdb_and_still_answers(tmp_path: Path) -> None:
    """A real `aipipe serve --dev`: once idle, no DuckDB in the relay and no worker left; the
    next read starts one and sees every recorded call."""
    env = clean_env(AIPIPE_STORE_IDLE="0.5", AIPIPE_DATA_DIR=str(tmp_path / "data"))
    with serve_relay(tmp_path, env, "--dev") as url:
        token = httpx.post(f"{url}/dev-login", json={"email": "student@example.com"}).json()
        headers = {"authorization": f"Bearer {token['token']}"}
        chat = httpx.post(
            f"{url}/openai/v1/chat/completions",
            json={"model": "aipipe-demo", "messages": [{"role": "user", "content": "hi"}]},
            headers=headers, timeout=30,
        )
        assert chat.status_code == 200, chat.text
        pid = _relay_pid(url)
        wait_for(lambda: httpx.get(f"{url}/healthz").json()["store"] == "stopped")
        assert "_duckdb" not in Path(f"/proc/{pid}/maps").read_text()
        assert _children(pid) == []
        usage = httpx.get(f"{url}/usage/requests", headers=headers, timeout=30)
        assert usage.status_code == 200
        assert [r["model"] for r in usage.json()["data"]] == ["aipipe-demo"]
        assert httpx.get(f"{url}/healthz").json()["store"] == "running"
        assert len(_children(pid)) == 1


def _relay_pid(url: str) -> int:
    port = url.rsplit(":", 1)[1]
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                argv = (proc / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue  # it ended while we looked
            if b"serve" in argv and port.encode() in argv:
                return int(proc.name)
    raise AssertionError(f"no relay process on port {port}")


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        found += [int(p) for p in text if alive(int(p))]
    return found


def test_a_file_locked_from_outside_is_retried_with_backoff(tmp_path: Path) -> None:
    """Each start costs a DuckDB start-up: while the file stays locked the relay waits longer
    between tries instead of spinning, and recovers once it is free."""
    path = tmp_path / "u.duckdb"
    Store(path).open(background=False).close()
    holder = _hold_duckdb_lock(path)
    process = LedgerProcess(path, idle_seconds=60, lock_wait=0.2)
    try:
        with pytest.raises(StoreLocked):
            process.open(None)
        with pytest.raises(LedgerError, match=r"could not open the database.*next try in"):
            process.query("SELECT 1")
        assert process.starts == 1  # no second worker during the back-off
    finally:
        holder.kill()
        holder.wait()
    assert 1.5 < process.retry_in <= 2.0  # the first back-off is 2 s
    time.sleep(process.retry_in)  # the moment the relay itself would try again
    assert process.query("SELECT 42") == [(42,)]
    assert process.starts == 2
    process.close()


def _ignored(pid: int) -> set[int]:
    """The signals a process ignores (SigIgn in /proc/PID/status)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("SigIgn:"):
            mask = int(line.split()[1], 16)
            return {n for n in range(1, 65) if mask >> (n - 1) & 1}
    return set()


def _hold_duckdb_lock(path: Path) -> subprocess.Popen:
    holder = subprocess.Popen(
        [sys.executable, "-c",
         f"import duckdb, time\nc = duckdb.connect({str(path)!r})\nprint('ok', flush=True)\n"
         "time.sleep(60)"],
        stdout=subprocess.PIPE, text=True,
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "ok"
    return holder


def _threads(pid: int) -> int:
    """Threads the process still has: a killed process's descriptors (its pipes) stay open
    until its last thread has ended, though its main thread already shows as a zombie."""
    try:
        return len(os.listdir(f"/proc/{pid}/task"))
    except OSError:  # reaped
        return 0


def test_healthz_says_where_the_sql_runs(make_client, tmp_path: Path) -> None:
    """Operators see whether the store worker is up; with AIPIPE_STORE_IDLE=0 it is in process."""
    from tests.conftest import make_settings

    in_process = make_client(make_settings(tmp_path / "a"))
    assert in_process.get("/healthz").json()["store"] == "in process"
    worker = make_client(make_settings(tmp_path / "b", store_idle=60))
    assert worker.get("/healthz").json()["store"] == "running"  # started to load the mirror
