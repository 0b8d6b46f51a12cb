"""Usage storage for the relay: buffered ledger rows and the in-memory per-day spend.

DuckDB allows one writing process per file and a single-row write costs ~2 ms on this disk, so:
- spend per (email, date) is mirrored in memory and is what budget checks read (no I/O per request);
- `record()` only appends to a buffer; a background thread writes buffered rows in one batch every
  `flush_seconds` (column arrays + UNNEST: ~13 µs a row), in one transaction with the day totals;
- `close()` flushes what is left. A hard kill loses at most one flush interval.

The SQL lives in `relay.store.duckdb_ledger`. The relay runs it in a store worker process
(`relay.store.worker`) that exits after `worker_idle` seconds without ledger work, so an idle
relay does not hold DuckDB's ~50 MB; `worker_idle=0` (and the CLI) keep it in this process.
A lock file next to the database marks the relay's ownership while the worker is stopped.
"""

from __future__ import annotations

import fcntl
import functools
import operator
import os
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Iterable
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import anyio

from relay.clock import utc_today
from relay.store.base import COLUMN_NAMES, DayUpserts, Ledger, LedgerError, LedgerRow, StoreLocked

DEFAULT_MIRROR_DAYS = 366  # days of per-day totals held in memory: the longest budget window
_ROW = operator.attrgetter(*COLUMN_NAMES)  # astuple() deep-copies: 150x slower

class Store:
    def __init__(
        self,
        path: Path,
        *,
        flush_seconds: float = 0.5,
        mirror_days: int = DEFAULT_MIRROR_DAYS,
        worker_idle: float = 0,
    ):
        self.path = path
        self.flush_seconds = flush_seconds
        self.mirror_days = mirror_days  # only windows up to this long can be answered from memory
        self.worker_idle = worker_idle  # > 0: SQL runs in a store worker that stops when idle
        self.db: Ledger | None = None
        self._lock_fd: int | None = None
        self._lock = threading.Lock()  # guards the buffers and the mirror
        self._write_lock = threading.Lock()  # one flush at a time
        self._rows: list[LedgerRow] = []
        self._day_ops: list[tuple[str, str, date, Decimal]] = []  # ("add"|"set", email, date, cost)
        self._failed: tuple[str, list[list], DayUpserts, int] | None = None  # a write to retry
        self._daily: dict[str, dict[date, Decimal]] = defaultdict(dict)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.rows_written = 0
        self.last_flush_error: str | None = None
        self.last_flush_at: float | None = None  # time.time() of the last flush that succeeded

    # -- life cycle -------------------------------------------------------------------------
    def open(self, *, background: bool = True, read_only: bool = False) -> Store:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._take_lock_file()
        try:
            self.db = self._ledger(read_only)
            since = utc_today() - timedelta(days=self.mirror_days)
            mirror = self.db.open(since)
        except BaseException:
            self._release_lock_file()
            raise
        with self._lock:
            for email, day, cost in mirror:
                self._daily[email][day] = cost
        if background and not read_only:
            self._thread = threading.Thread(target=self._run, name="aipipe-store", daemon=True)
            self._thread.start()
        return self

    def _ledger(self, read_only: bool) -> Ledger:
        if self.worker_idle > 0 and not read_only:
            from relay.store.worker import LedgerProcess

            return LedgerProcess(self.path, idle_seconds=self.worker_idle)
        from relay.store.duckdb_ledger import LedgerDB  # imports DuckDB

        return LedgerDB(self.path, read_only=read_only)

    @staticmethod
    def in_use(path: Path) -> bool:
        """Whether a running relay (or another open Store) holds this database."""
        if not Path(f"{path}.lock").exists():
            return False
        probe = Store(path)
        try:
            probe._take_lock_file()
        except StoreLocked:
            return True
        probe._release_lock_file()
        return False

    def _take_lock_file(self) -> None:
        """Hold `<db>.lock` while open: it marks the file as owned even while no worker runs."""
        fd = os.open(f"{self.path}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise StoreLocked(f"{self.path} is in use by another process (a running relay?)") from None
        self._lock_fd = fd

    def _release_lock_file(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # closing the descriptor releases the flock
            self._lock_fd = None

    def close(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join()
            self._thread = None
        if self.db is not None:
            try:
                try:
                    self.flush()
                except LedgerError:  # a worker that died just now: one more try on a fresh one
                    try:
                        self.flush()
                    except LedgerError as e:
                        raise LedgerError(f"{self.pending()} ledger rows not written: {e}") from e
            finally:
                self.db.close()
                self.db = None
                self._release_lock_file()

    def _run(self) -> None:
        last_prune = time.monotonic()
        while not self._stop.wait(self.flush_seconds):
            if time.monotonic() - last_prune > 3600:
                self._prune()
                last_prune = time.monotonic()
            try:
                self.flush()
                self.ledger.idle()
            except LedgerError as e:  # keep the buffers, retry next tick, let /healthz show it
                self.last_flush_error = str(e)

    @property
    def ledger(self) -> Ledger:
        if self.db is None:
            raise RuntimeError("store is not open")
        return self.db

    # -- writes (called on the event loop: memory only) ---------------------------------------
    def record(self, row: LedgerRow) -> None:
        with self._lock:
            self._rows.append(row)
            if row.cost:
                self._daily[row.email][row.date] = (
                    self._daily[row.email].get(row.date, 0) + row.cost
                )
                self._day_ops.append(("add", row.email, row.date, row.cost))

    def set_day_cost(self, email: str, day: date, cost: Decimal) -> None:
        """Overwrite one day's cost (admin correction)."""
        email = email.lower()
        with self._lock:
            self._daily[email][day] = cost
            self._day_ops.append(("set", email, day, cost))

    def widen(self, days: int) -> None:
        """Hold `days` of per-day totals in memory from now on (a reloaded policy has a longer
        budget window): the older days are read from the ledger once."""
        if days <= self.mirror_days:
            return
        today = utc_today()
        since, until = today - timedelta(days=days), today - timedelta(days=self.mirror_days)
        rows = self.query("SELECT email, date, cost FROM daily WHERE date >= ? AND date < ?", [since, until])
        with self._lock:
            for email, day, cost in rows:
                self._daily[email].setdefault(day, cost)  # a newer admin overwrite stays
            self.mirror_days = days

    def worker(self) -> str:
        """Where the SQL runs: "in process", or the store worker's state ("running"/"stopped")."""
        running = getattr(self.db, "running", None)  # only LedgerProcess has a worker
        return "in process" if running is None else ("running" if running else "stopped")

    def pending(self) -> int:
        return len(self._rows) + (self._failed[3] if self._failed else 0)

    def flush(self) -> int:
        """Write buffered rows and day totals in one transaction. Returns rows written."""
        with self._write_lock:
            written = 0
            if self._failed is not None:  # it may have landed before its writer died: say so
                batch, columns, days, count = self._failed
                if self.ledger.write(batch, columns, days, retry=True):
                    written += count
                self._failed = None
            with self._lock:
                rows, self._rows = self._rows, []
                ops, self._day_ops = self._day_ops, []
            if rows or ops:
                batch = uuid.uuid4().hex
                columns = [list(c) for c in zip(*map(_ROW, rows), strict=True)]
                days = _collapse(ops)
                try:
                    self.ledger.write(batch, columns, days)
                except LedgerError:
                    self._failed = (batch, columns, days, len(rows))
                    raise
                written += len(rows)
            self.rows_written += written
            self.last_flush_error = None
            self.last_flush_at = time.time()
            return written

    # -- reads ------------------------------------------------------------------------------
    def day_costs(
        self, email: str, days: int, today: date | None = None
    ) -> list[tuple[date, Decimal]]:
        """Cost per UTC date over the window (today and the previous days-1), oldest first."""
        today = today or utc_today()
        mine = self._daily.get(email.lower(), {})
        window = [today - timedelta(days=i) for i in range(days - 1, -1, -1)]
        return [(d, mine.get(d, Decimal(0))) for d in window]

    def spend(self, email: str, days: int, today: date | None = None) -> Decimal:
        today = today or utc_today()
        mine = self._daily.get(email.lower())
        if not mine:
            return Decimal(0)
        total = Decimal(0)
        for day in _window(today, days):
            total += mine.get(day, 0)
        return total

    def query(self, sql: str, params: Iterable[Any] = ()) -> list[tuple]:
        """A read-only query, after writing what is buffered (so reads are current)."""
        self.flush()
        return self.ledger.query(sql, params)

    def export(self, out: Path, fmt: str) -> int:
        """Write the ledger to `out` as parquet or csv; returns the number of rows."""
        if fmt not in ("parquet", "csv"):
            raise ValueError("format must be parquet or csv")
        self.flush()
        return self.ledger.export(out, fmt)

    # -- the interface routes use with either store (the PostgreSQL one is async throughout) ----
    async def read(self, sql: str, params: Iterable[Any] = ()) -> list[tuple]:
        return await anyio.to_thread.run_sync(self.query, sql, list(params))

    async def set_day(self, email: str, day: date, cost: Decimal) -> None:
        self.set_day_cost(email, day, cost)

    async def export_file(self, out: Path, fmt: str) -> int:
        return await anyio.to_thread.run_sync(self.export, out, fmt)

    async def aclose(self) -> None:
        self.close()

    def _prune(self) -> None:
        """Forget day totals older than any budget window (a long-running relay would grow)."""
        cutoff = utc_today() - timedelta(days=self.mirror_days)
        with self._lock:
            for email in list(self._daily):
                days = self._daily[email]
                for day in [d for d in days if d < cutoff]:
                    del days[day]
                if not days:
                    del self._daily[email]


def _collapse(
    ops: list[tuple[str, str, date, Decimal]],
) -> dict[tuple[str, date], tuple[str, Decimal]]:
    """Fold ordered add/set ops into one op per key (a multi-row upsert must not repeat a key)."""
    out: dict[tuple[str, date], tuple[str, Decimal]] = {}
    for mode, email, day, cost in ops:
        key = (email, day)
        prev = out.get(key)
        if mode == "set" or prev is None:
            out[key] = (mode, cost)
        else:
            out[key] = (prev[0], prev[1] + cost)
    return out


@functools.lru_cache(maxsize=64)
def _window(today: date, days: int) -> tuple[date, ...]:
    """The UTC dates of a budget window ending today (cached: every request asks)."""
    return tuple(today - timedelta(days=i) for i in range(days))
