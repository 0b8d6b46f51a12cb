"""The usage database file: the only module of the relay that imports DuckDB.

`LedgerDB` does the SQL for `relay.store.buffered.Store`, either inside the relay process or inside the
store worker (`relay.store.worker`), which the relay runs only while there is ledger work so an
idle relay does not carry DuckDB's ~50 MB.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

# The engine module alone (what `duckdb` re-exports): the `duckdb` package's Python layer
# (relations, expressions, version lookup) adds ~150 ms to every store-worker start.
import _duckdb as duckdb

from relay.clock import utc_now
from relay.store.base import COLUMN_NAMES, LOCK_WAIT, DayUpserts, LedgerError, StoreLocked
from relay.store.migrations import LEDGER_COLUMNS, MIGRATIONS

_INSERT = "INSERT INTO requests SELECT {}".format(
    ", ".join(f"unnest(?::{sql_type}[])" for _, sql_type in LEDGER_COLUMNS)
)
_FORMULA_START = "'=', '+', '-', '@', chr(9), chr(13)"
_CSV_COLUMNS = ", ".join(
    f"CASE WHEN left({name}, 1) IN ({_FORMULA_START}) THEN chr(39) || {name} ELSE {name} END"
    f" AS {name}" if sql_type == "VARCHAR" else name
    for name, sql_type in LEDGER_COLUMNS
)


class LedgerDB:
    def __init__(self, path: Path, *, read_only: bool = False, lock_wait: float = LOCK_WAIT):
        self.path = path
        self.read_only = read_only
        self.lock_wait = lock_wait
        self._con: duckdb.DuckDBPyConnection | None = None

    def open(self, mirror_since: date | None) -> list[tuple[str, date, Decimal]]:
        """Connect (migrating a writable file); returns the day totals since `mirror_since`."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._con = self._connect()
        if not self.read_only:
            migrate(self._con)
        if mirror_since is None:
            return []
        return self.con.execute(
            "SELECT email, date, cost FROM daily WHERE date >= ?", [mirror_since]
        ).fetchall()

    def idle(self) -> None:
        """Nothing to release: in process, the connection stays open."""

    def _connect(self) -> duckdb.DuckDBPyConnection:
        # The caller holds the relay's lock file, so a DuckDB lock is most likely the store worker
        # of a relay that was just killed, closing the file: give it a moment.
        deadline = time.monotonic() + self.lock_wait
        while True:
            try:
                return duckdb.connect(str(self.path), read_only=self.read_only)
            except duckdb.IOException as e:
                if "lock" not in str(e).lower():
                    raise LedgerError(str(e)) from e
                if time.monotonic() > deadline:
                    raise StoreLocked(
                        f"{self.path} is in use by another process (a running relay or a notebook?)"
                    ) from e
                time.sleep(0.1)

    def close(self) -> None:
        if self._con is not None:
            self._con.close()
            self._con = None

    @property
    def con(self) -> duckdb.DuckDBPyConnection:
        if self._con is None:
            raise RuntimeError("ledger database is not open")
        return self._con

    def write(self, batch: str, columns: Sequence[list], days: DayUpserts, *, retry: bool = False) -> bool:
        """Append ledger rows (one list per column) and apply day totals in one transaction.

        `batch` names the write; a retried batch that was committed before the writer could
        answer (the worker died in between) is not applied twice. Returns False for such a batch.
        """
        con = self.con.cursor()
        try:
            if retry and con.execute("SELECT id FROM last_batch").fetchall() == [(batch,)]:
                return False
            con.execute("BEGIN")
            if columns:
                con.execute(_INSERT, list(columns))
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
            con.execute("UPDATE last_batch SET id = ?", [batch])
            con.execute("COMMIT")
            return True
        except duckdb.Error as e:
            con.execute("ROLLBACK")
            raise LedgerError(str(e)) from e
        finally:
            con.close()

    def query(self, sql: str, params: Iterable[Any] = ()) -> list[tuple]:
        cur = self.con.cursor()
        try:
            return cur.execute(sql, list(params)).fetchall()
        except duckdb.Error as e:
            raise LedgerError(str(e)) from e
        finally:
            cur.close()

    def export(self, out: Path, fmt: str) -> int:
        """Write the ledger to `out` as parquet or csv; returns the number of rows.

        In CSV, a text cell a spreadsheet would run as a formula (it starts with =, +, -, @, a
        tab or a carriage return — a caller's Origin header or model name can) is written with a
        leading apostrophe, which spreadsheets show as text."""
        if fmt not in ("parquet", "csv"):
            raise ValueError("format must be parquet or csv")
        cur = self.con.cursor()
        try:
            cols = ", ".join(COLUMN_NAMES) if fmt == "parquet" else _CSV_COLUMNS
            options = "FORMAT parquet" if fmt == "parquet" else "FORMAT csv, HEADER true"
            target = str(out).replace("'", "''")
            cur.execute(f"COPY (SELECT {cols} FROM requests ORDER BY ts) TO '{target}' ({options})")
            return int(cur.execute("SELECT count(*) FROM requests").fetchone()[0])  # type: ignore[index]
        except duckdb.Error as e:
            raise LedgerError(str(e)) from e
        finally:
            cur.close()


def migrate(con: duckdb.DuckDBPyConnection) -> list[int]:
    """Apply the migrations this file has not seen yet; returns the versions applied."""
    con.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations "
        "(version INTEGER PRIMARY KEY, name VARCHAR, applied_at TIMESTAMP)"
    )
    done = {v for (v,) in con.execute("SELECT version FROM schema_migrations").fetchall()}
    applied = []
    for version, name, sql, _ in MIGRATIONS:
        if version in done:
            continue
        con.execute("BEGIN")
        con.execute(sql)
        con.execute("INSERT INTO schema_migrations VALUES (?, ?, ?)", [version, name, utc_now()])
        con.execute("COMMIT")
        applied.append(version)
    return applied


class LedgerFileWriter:
    """Ledger rows from elsewhere (the PostgreSQL store) written out as parquet or csv: batches of
    columns go into a scratch DuckDB file, then one COPY writes the export as `LedgerDB` does."""

    def __init__(self, scratch: Path):
        self.scratch = scratch
        self._db = LedgerDB(scratch)
        self._db.open(None)

    def append(self, columns: Sequence[list]) -> None:
        try:
            self._db.con.execute(_INSERT, list(columns))
        except duckdb.Error as e:
            raise LedgerError(str(e)) from e

    def finish(self, out: Path, fmt: str) -> int:
        return self._db.export(out, fmt)

    def close(self) -> None:
        self._db.close()
        for path in (self.scratch, Path(f"{self.scratch}.wal")):
            path.unlink(missing_ok=True)
