"""`aipipe copy`: an existing DuckDB install into the PostgreSQL store, idempotently.

- Ledger rows keep their ids: a row already in PostgreSQL is skipped (ON CONFLICT DO NOTHING), so
  copying twice adds nothing, and copying again after the DuckDB relay served more adds the rest.
  (Ids are unique in practice; should an old file repeat one, the repeats get `-2`, `-3`... so
  every row still arrives once.)
- Day totals (`daily`, which admin overwrites may have made differ from the ledger) are copied as
  differences: `imported_daily` remembers what each install contributed, so a second copy adds
  only what changed, and spend made through PostgreSQL meanwhile is kept.
Everything lands in one transaction: an interrupted copy leaves nothing half done.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import asyncpg

from relay.store.base import COLUMN_NAMES
from relay.store.pg_schema import migrate
from relay.store.postgres import FAILURES, INSERT_ROWS, DatabaseUnavailable

BATCH = 20_000


@dataclass
class Side:
    rows: int
    ledger_cost: Decimal  # sum of the ledger rows' cost
    daily_cost: Decimal  # sum of the day totals (what budgets read)


@dataclass
class CopyReport:
    source: Side
    target: Side
    rows_added: int


def copy_to_postgres(duckdb_file: Path, url: str) -> CopyReport:
    """Copy `duckdb_file` (opened read-only: stop its relay first) into the database at `url`."""
    from relay.store.duckdb_ledger import LedgerDB

    db = LedgerDB(duckdb_file, read_only=True)
    db.open(None)
    try:
        [(first,)] = db.query("SELECT min(applied_at) FROM schema_migrations") or [(None,)]
        source_id = f"duckdb:{first.isoformat() if first else duckdb_file.resolve()}"
        source = Side(*db.query(
            "SELECT (SELECT count(*) FROM requests), (SELECT coalesce(sum(cost), 0) FROM requests), "
            "(SELECT coalesce(sum(cost), 0) FROM daily)"
        )[0])
        cols = ", ".join(COLUMN_NAMES[1:])
        cursor = db.con.cursor()
        cursor.execute(
            f"SELECT CASE WHEN n = 1 THEN id ELSE id || '-' || n END, {cols} FROM ("
            f"SELECT *, row_number() OVER (PARTITION BY id ORDER BY ts, {cols}) AS n FROM requests)"
        )
        days = db.query("SELECT email, date, cost FROM daily")
        added, target = asyncio.run(_load(url, cursor, days, source_id))
        cursor.close()
    finally:
        db.close()
    return CopyReport(source, target, added)


async def _load(url: str, cursor, days: list[tuple], source_id: str) -> tuple[int, Side]:  # type: ignore[no-untyped-def]
    try:
        con = await asyncpg.connect(url)
    except FAILURES as e:
        raise DatabaseUnavailable(f"cannot reach {url.split('@')[-1]}: {e}") from e
    try:
        await migrate(con)
        added = 0
        async with con.transaction():
            while rows := cursor.fetchmany(BATCH):
                columns = [list(c) for c in zip(*rows, strict=True)]
                status = await con.execute(INSERT_ROWS, *columns)
                added += int(status.split()[-1])  # "INSERT 0 <n>"
            await con.execute(
                "CREATE TEMP TABLE incoming (email VARCHAR, date DATE, cost DECIMAL(18,10)) ON COMMIT DROP"
            )
            await con.copy_records_to_table("incoming", records=days)
            # What this install adds now: its day totals minus what earlier copies added.
            await con.execute(
                """
                INSERT INTO daily AS d
                    SELECT i.email, i.date, i.cost - coalesce(p.cost, 0)
                    FROM incoming AS i LEFT JOIN imported_daily AS p
                      ON p.source = $1 AND p.email = i.email AND p.date = i.date
                    WHERE i.cost <> coalesce(p.cost, 0)
                    ORDER BY i.email, i.date
                ON CONFLICT (email, date) DO UPDATE SET cost = d.cost + excluded.cost
                """,
                source_id,
            )
            await con.execute(
                """
                INSERT INTO imported_daily AS p SELECT $1, email, date, cost FROM incoming
                ON CONFLICT (source, email, date) DO UPDATE SET cost = excluded.cost
                """,
                source_id,
            )
        row = await con.fetchrow(
            "SELECT (SELECT count(*) FROM requests), (SELECT coalesce(sum(cost), 0) FROM requests), "
            "(SELECT coalesce(sum(cost), 0) FROM daily)"
        )
        return added, Side(row[0], row[1], row[2])
    finally:
        await con.close()
