"""The store worker: DuckDB in a child process that runs only while there is ledger work.

DuckDB's library and catalog take ~50 MB of the relay's memory. `LedgerProcess` (relay side)
starts `python -m relay.store.worker DB` on the first write or read, sends it `LedgerDB` calls
as length-prefixed pickles over the child's stdin/stdout, and ends it (closing its stdin) after
`idle_seconds` without a call. The worker exits when its stdin closes - also when the relay dies -
and ignores SIGINT/SIGTERM so that a Ctrl-C or a service stop, which reach the whole process group,
cannot kill it before the relay has sent its last rows.
"""

from __future__ import annotations

import contextlib
import pickle
import signal
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Sequence
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

from relay.store.base import LOCK_WAIT, DayUpserts, LedgerError, StoreLocked

_HEADER = struct.Struct(">I")
STOP_TIMEOUT = 30.0  # seconds for a stopping worker to checkpoint and exit before it is killed
MAX_BACKOFF = 30.0  # seconds between start attempts while the worker cannot open the file


def send(stream: IO[bytes], message: object) -> None:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_HEADER.pack(len(data)) + data)
    stream.flush()


def receive(stream: IO[bytes]) -> Any:
    """The next message, or EOFError when the other side has gone."""
    head = stream.read(_HEADER.size)
    if len(head) < _HEADER.size:
        raise EOFError("the other side closed the pipe")
    (size,) = _HEADER.unpack(head)
    data = stream.read(size)
    if len(data) < size:
        raise EOFError("the other side closed the pipe mid-message")
    return pickle.loads(data)  # both ends are this package, over a private pipe


class LedgerProcess:
    """`LedgerDB`'s methods, run in a store worker that is started on demand and stopped when idle."""

    def __init__(self, path: Path, *, idle_seconds: float, lock_wait: float = LOCK_WAIT):
        self.path = path
        self.idle_seconds = idle_seconds
        self.lock_wait = lock_wait  # how long a worker waits for another process to let go
        self.starts = 0  # workers started so far (the first one loads the mirror)
        self._proc: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()  # one call at a time: the pipe carries one conversation
        self._last_call = 0.0
        self._failures = 0  # failed starts in a row: the next try waits 2**n seconds (capped)
        self._retry_at = 0.0
        self._last_failure = ""

    @property
    def running(self) -> bool:
        return self._proc is not None

    @property
    def retry_in(self) -> float:
        """Seconds until the next start may be tried (0 when one may be tried now)."""
        return max(0.0, self._retry_at - time.monotonic()) if self._proc is None else 0.0

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def open(self, mirror_since: date | None) -> list[tuple[str, date, Decimal]]:
        with self._lock:
            return self._start(mirror_since)

    def write(
        self, batch: str, columns: Sequence[list], days: DayUpserts, *, retry: bool = False
    ) -> bool:
        return self._call(("write", batch, list(columns), days, retry))

    def query(self, sql: str, params: Iterable[Any] = ()) -> list[tuple]:
        return self._call(("query", sql, list(params)))

    def export(self, out: Path, fmt: str) -> int:
        return self._call(("export", out, fmt))

    def idle(self) -> None:
        """Stop the worker if nothing has used it for `idle_seconds`."""
        with self._lock:
            if self._proc is not None and time.monotonic() - self._last_call > self.idle_seconds:
                self._stop()

    def close(self) -> None:
        with self._lock:
            self._stop()

    # -- the conversation -----------------------------------------------------------------------
    def _call(self, message: tuple) -> Any:
        with self._lock:
            if self._proc is None:
                wait = self._retry_at - time.monotonic()
                if wait > 0:  # each try costs a DuckDB start: do not spin on a locked file
                    raise LedgerError(f"{self._last_failure} (next try in {wait:.0f} s)")
                self._start(None)
            return self._exchange(message)

    def _exchange(self, message: tuple) -> Any:
        proc = self._proc
        assert proc is not None and proc.stdin is not None and proc.stdout is not None
        try:
            send(proc.stdin, message)
            status, value = receive(proc.stdout)
        except (OSError, EOFError, pickle.PickleError) as e:
            self._kill()
            raise LedgerError(f"the store worker stopped unexpectedly ({e})") from e
        self._last_call = time.monotonic()
        if status == "ok":
            return value
        if status == "locked":
            raise StoreLocked(value)
        raise LedgerError(value)

    def _start(self, mirror_since: date | None) -> list[tuple[str, date, Decimal]]:
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "relay.store.worker", str(self.path), str(self.lock_wait)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,  # stderr stays the relay's: the worker's errors reach its log
        )
        self.starts += 1
        try:
            mirror = self._exchange(("open", mirror_since))
        except (StoreLocked, LedgerError) as e:
            self._kill()
            self._failures += 1
            self._retry_at = time.monotonic() + min(MAX_BACKOFF, 2.0 ** self._failures)
            self._last_failure = f"the store worker could not open the database: {e}"
            raise
        self._failures = 0
        self._retry_at = 0.0
        return mirror

    def _stop(self) -> None:
        """Close the worker's stdin: it closes the database (checkpointing it) and exits."""
        proc = self._proc
        if proc is None:
            return
        assert proc.stdin is not None and proc.stdout is not None
        with contextlib.suppress(OSError):  # it has already gone: there is nothing left to tell it
            proc.stdin.close()
        try:
            proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        self._proc = None  # only now: `running` stays true until the worker has gone

    def _kill(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            proc.kill()
            proc.wait()
            for pipe in (proc.stdin, proc.stdout):
                if pipe is not None:
                    # closing flushes what a failed write left buffered: the reader is gone
                    with contextlib.suppress(OSError):
                        pipe.close()


def serve(path: Path, lock_wait: float, inp: IO[bytes], out: IO[bytes]) -> None:
    """Answer `LedgerDB` calls from `inp` until it closes."""
    from relay.store.duckdb_ledger import LedgerDB  # imports DuckDB: only the worker pays for it

    db = LedgerDB(path, lock_wait=lock_wait)
    calls = {"open": db.open, "query": db.query, "export": db.export}
    try:
        while True:
            try:
                op, *args = receive(inp)
            except EOFError:
                return
            try:
                if op == "write":
                    batch, columns, days, retry = args
                    reply: tuple = ("ok", db.write(batch, columns, days, retry=retry))
                else:
                    reply = ("ok", calls[op](*args))
            except StoreLocked as e:
                reply = ("locked", str(e))
            except (LedgerError, ValueError, RuntimeError, OSError) as e:
                reply = ("error", str(e))
            send(out, reply)
    finally:
        db.close()


def main(argv: list[str]) -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    serve(Path(argv[0]), float(argv[1]), sys.stdin.buffer, sys.stdout.buffer)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
