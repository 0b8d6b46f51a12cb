"""The usage database: the only module that talks to DuckDB.

DuckDB allows one writing process per file and a single-row write costs ~2 ms on this disk, so:
- spend per (email, date) is mirrored in memory and is what budget checks read (no I/O per request);
- `record()` only appends to a buffer; a background thread writes buffered rows in one batch every
  `flush_seconds` (column arrays + UNNEST: ~13 µs a row), in one transaction with the day totals;
- `close()` flushes what is left. A hard kill loses at most one flush interval.
"""

from __future__ import annotations

import functools
import operator
import threading
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb

from relay.migrations import LEDGER_COLUMNS, MIGRATIONS

COLUMN_NAMES = tuple(name for name, _ in LEDGER_COLUMNS)
_INSERT = "INSERT INTO requests SELECT {}".format(
    ", ".join(f"unnest(?::{sql_type}[])" for _, sql_type in LEDGER_COLUMNS)
)
DEFAULT_MIRROR_DAYS = 366  # days of per-day totals held in memory: the longest budget window


@dataclass(slots=True)
class LedgerRow:
    """One request, as recorded. Field order is the ledger's column order."""

    id: str
    ts: datetime  # UTC, naive
    date: date
    email: str
    provider: str
    path: str
    model: str
    status: int
    outcome: str  # ok | error | aborted | broken | refused
    input_tokens: int
    output_tokens: int
    cached_tokens: int
    reasoning_tokens: int
    cost: Decimal
    cost_source: str  # reported | computed | estimated | free
    latency_ms: float
    streamed: bool
    origin: str


_ROW = operator.attrgetter(*(name for name, _ in LEDGER_COLUMNS))  # astuple() deep-copies: 150x slower


class StoreLocked(RuntimeError):
    """Another process (a running relay) holds the database file."""


class Store:
    def __init__(
        self, path: Path, *, flush_seconds: float = 0.5, mirror_days: int = DEFAULT_MIRROR_DAYS
    ):
        self.path = path
        self.flush_seconds = flush_seconds
        self.mirror_days = mirror_days  # only windows up to this long can be answered from memory
        self._con: duckdb.DuckDBPyConnection | None = None
        self._lock = threading.Lock()  # guards the buffers and the mirror
        self._write_lock = threading.Lock()  # one flush at a time
        self._rows: list[LedgerRow] = []
        self._day_ops: list[tuple[str, str, date, Decimal]] = []  # ("add"|"set", email, date, cost)
        self._daily: dict[str, dict[date, Decimal]] = defaultdict(dict)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.rows_written = 0
        self.last_flush_error: str | None = None

    # -- life cycle -------------------------------------------------------------------------
    def open(self, *, background: bool = True, read_only: bool = False) -> Store:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._con = duckdb.connect(str(self.path), read_only=read_only)
        except duckdb.IOException as e:
            if "lock" in str(e).lower():
                raise StoreLocked(
                    f"{self.path} is in use by another process (a running relay?)"
                ) from e
            raise
        if not read_only:
            migrate(self._con)
        self._load_mirror()
        if background and not read_only:
            self._thread = threading.Thread(target=self._run, name="aipipe-store", daemon=True)
            self._thread.start()
        return self

    def close(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join()
            self._thread = None
        if self._con is not None:
            self.flush()
            self._con.close()
            self._con = None

    def _run(self) -> None:
        last_prune = time.monotonic()
        while not self._stop.wait(self.flush_seconds):
            if time.monotonic() - last_prune > 3600:
                self._prune()
                last_prune = time.monotonic()
            try:
                self.flush()
            except duckdb.Error as e:  # keep the buffers, retry next tick, let /healthz show it
                self.last_flush_error = str(e)

    @property
    def con(self) -> duckdb.DuckDBPyConnection:
        if self._con is None:
            raise RuntimeError("store is not open")
        return self._con

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

    def pending(self) -> int:
        return len(self._rows)

    def flush(self) -> int:
        """Write buffered rows and day totals in one transaction. Returns rows written."""
        with self._write_lock:
            with self._lock:
                rows, self._rows = self._rows, []
                ops, self._day_ops = self._day_ops, []
            if not rows and not ops:
                return 0
            try:
                self._write(rows, _collapse(ops))
            except duckdb.Error:
                with self._lock:  # put them back in front, in order, for the next try
                    self._rows[:0] = rows
                    self._day_ops[:0] = ops
                raise
            self.rows_written += len(rows)
            self.last_flush_error = None
            return len(rows)

    def _write(
        self, rows: list[LedgerRow], days: dict[tuple[str, date], tuple[str, Decimal]]
    ) -> None:
        con = self.con.cursor()
        try:
            con.execute("BEGIN")
            if rows:
                columns = [list(c) for c in zip(*map(_ROW, rows), strict=True)]
                con.execute(_INSERT, columns)
            for mode in ("set", "add"):
                keys = [(k, v) for k, (m, v) in days.items() if m == mode]
                if not keys:
                    continue
                update = "excluded.cost" if mode == "set" else "daily.cost + excluded.cost"
                con.execute(
                    "INSERT INTO daily SELECT unnest(?::VARCHAR[]), unnest(?::DATE[]), "
                    "unnest(?::DECIMAL(18,10)[]) "
                    f"ON CONFLICT (email, date) DO UPDATE SET cost = {update}",
                    [[k[0] for k, _ in keys], [k[1] for k, _ in keys], [v for _, v in keys]],
                )
            con.execute("COMMIT")
        except duckdb.Error:
            con.execute("ROLLBACK")
            raise
        finally:
            con.close()

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
        """A read-only query on a fresh cursor, after writing what is buffered (so reads are current)."""
        self.flush()
        cur = self.con.cursor()
        try:
            return cur.execute(sql, list(params)).fetchall()
        finally:
            cur.close()

    def export(self, out: Path, fmt: str) -> int:
        """Write the ledger to `out` as parquet or csv; returns the number of rows."""
        if fmt not in ("parquet", "csv"):
            raise ValueError("format must be parquet or csv")
        self.flush()
        cur = self.con.cursor()
        try:
            cols = ", ".join(COLUMN_NAMES)
            options = "FORMAT parquet" if fmt == "parquet" else "FORMAT csv, HEADER true"
            target = str(out).replace("'", "''")
            cur.execute(f"COPY (SELECT {cols} FROM requests ORDER BY ts) TO '{target}' ({options})")
            return int(cur.execute("SELECT count(*) FROM requests").fetchone()[0])  # type: ignore[index]
        finally:
            cur.close()

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

    def _load_mirror(self) -> None:
        since = utc_today() - timedelta(days=self.mirror_days)
        rows = self.con.execute(
            "SELECT email, date, cost FROM daily WHERE date >= ?", [since]
        ).fetchall()
        with self._lock:
            for email, day, cost in rows:
                self._daily[email][day] = cost


def migrate(con: duckdb.DuckDBPyConnection) -> list[int]:
    """Apply the migrations this file has not seen yet; returns the versions applied."""
    con.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations "
        "(version INTEGER PRIMARY KEY, name VARCHAR, applied_at TIMESTAMP)"
    )
    done = {v for (v,) in con.execute("SELECT version FROM schema_migrations").fetchall()}
    applied = []
    for version, name, sql in MIGRATIONS:
        if version in done:
            continue
        con.execute("BEGIN")
        con.execute(sql)
        con.execute("INSERT INTO schema_migrations VALUES (?, ?, ?)", [version, name, utc_now()])
        con.execute("COMMIT")
        applied.append(version)
    return applied


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


def utc_now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def utc_today() -> date:
    return datetime.now(UTC).date()


def monotonic_ms(start: float) -> float:
    return (time.perf_counter() - start) * 1000
