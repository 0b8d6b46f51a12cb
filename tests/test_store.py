import threading
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from relay.clock import utc_today
from relay.store import LedgerRow, Store, StoreLocked
from relay.store.duckdb_ledger import migrate
from relay.store.migrations import MIGRATIONS


def row(email: str = "a@x.org", cost: str = "0.001", day: date | None = None, **kw) -> LedgerRow:
    day = day or utc_today()
    base = dict(
        id=kw.pop("id", "0" * 32),
        ts=datetime.combine(day, datetime.min.time()),
        date=day,
        email=email,
        provider="openai",
        path="/v1/chat/completions",
        model="gpt-4o-mini",
        status=200,
        outcome="ok",
        input_tokens=10,
        output_tokens=5,
        cached_tokens=0,
        reasoning_tokens=0,
        cost=Decimal(cost),
        cost_source="computed",
        latency_ms=1.5,
        streamed=False,
        origin="",
    )
    base.update(kw)
    return LedgerRow(**base)


def test_spend_is_visible_before_flush_and_survives_restart(tmp_path: Path) -> None:
    """Budget reads see a recorded cost at once; after close and reopen it is still there."""
    path = tmp_path / "u.duckdb"
    store = Store(path).open(background=False)
    store.record(row(cost="0.25"))
    store.record(row(cost="0.5"))
    assert store.spend("a@x.org", 7) == Decimal("0.75")
    assert store.pending() == 2
    store.close()
    again = Store(path).open(background=False)
    assert again.spend("A@x.org", 7) == Decimal("0.75")
    assert again.query("SELECT count(*) FROM requests") == [(2,)]
    again.close()


def test_window_counts_today_and_previous_days_only(tmp_path: Path) -> None:
    """A 7-day window is today plus the 6 UTC dates before it."""
    store = Store(tmp_path / "u.duckdb").open(background=False)
    today = utc_today()
    store.record(row(cost="1", day=today))
    store.record(row(cost="2", day=today - timedelta(days=6)))
    store.record(row(cost="4", day=today - timedelta(days=7)))
    assert store.spend("a@x.org", 7) == Decimal(3)
    assert store.spend("a@x.org", 8) == Decimal(7)
    store.close()


def test_overwrite_then_add_in_one_batch(tmp_path: Path) -> None:
    """Set-then-add and add-then-set for one day in the same flush keep their order."""
    path = tmp_path / "u.duckdb"
    store = Store(path).open(background=False)
    today = utc_today()
    store.record(row(cost="5"))
    store.set_day_cost("a@x.org", today, Decimal("1"))
    store.record(row(cost="0.5"))
    store.record(row(email="b@x.org", cost="2"))
    store.set_day_cost("b@x.org", today, Decimal("0"))
    store.close()
    again = Store(path).open(background=False)
    assert again.spend("a@x.org", 1) == Decimal("1.5")
    assert again.spend("b@x.org", 1) == 0
    again.close()


def test_background_flush_writes_batches(tmp_path: Path) -> None:
    """The writer thread flushes without being asked, so a crash loses at most one interval."""
    store = Store(tmp_path / "u.duckdb", flush_seconds=0.02).open()
    for i in range(500):
        store.record(row(id=f"{i:032x}", cost="0.0001"))
    deadline = datetime.now() + timedelta(seconds=5)
    while store.rows_written < 500 and datetime.now() < deadline:
        threading.Event().wait(0.02)
    assert store.rows_written == 500
    store.close()


def test_second_process_is_told_the_file_is_locked(tmp_path: Path) -> None:
    """DuckDB allows one writer: another opener gets a clear StoreLocked."""
    path = tmp_path / "u.duckdb"
    store = Store(path).open(background=False)
    import subprocess
    import sys

    code = (
        "import sys; from pathlib import Path; from relay.store import Store, StoreLocked\n"
        f"try:\n    Store(Path({str(path)!r})).open(background=False)\n"
        "except StoreLocked as e:\n    print('locked:', e); sys.exit(3)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    store.close()
    assert result.returncode == 3, result.stderr
    assert "in use by another process" in result.stdout
    assert StoreLocked


def test_migrations_upgrade_an_old_file_in_place(tmp_path: Path) -> None:
    """A file at schema version 1 with ledger rows gains the per-day table, backfilled."""
    path = tmp_path / "old.duckdb"
    con = duckdb.connect(str(path))
    con.execute(
        "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name VARCHAR, applied_at TIMESTAMP)"
    )
    version, name, sql, _ = MIGRATIONS[0]
    con.execute(sql)
    con.execute("INSERT INTO schema_migrations VALUES (?, ?, now())", [version, name])
    r = row(cost="0.3")
    con.execute(
        "INSERT INTO requests VALUES (" + ",".join("?" * 18) + ")",
        list(r.__getattribute__(f) for f in r.__slots__),
    )
    con.execute(
        "INSERT INTO requests VALUES (" + ",".join("?" * 18) + ")",
        list(row(id="1" * 32, cost="0.2").__getattribute__(f) for f in r.__slots__),
    )
    con.close()
    store = Store(path).open(background=False)
    assert store.spend("a@x.org", 1) == Decimal("0.5")
    versions = store.query("SELECT version FROM schema_migrations ORDER BY version")
    assert [v for (v,) in versions] == [m[0] for m in MIGRATIONS]
    store.close()
    con = duckdb.connect(str(path))
    assert migrate(con) == []  # applied exactly once
    con.close()


def test_export_writes_the_ledger(tmp_path: Path) -> None:
    """Export writes every ledger column, Parquet and CSV."""
    store = Store(tmp_path / "u.duckdb").open(background=False)
    store.record(row(cost="0.125"))
    assert store.export(tmp_path / "x.parquet", "parquet") == 1
    assert store.export(tmp_path / "x.csv", "csv") == 1
    header = (tmp_path / "x.csv").read_text().splitlines()[0]
    assert header.startswith("id,ts,date,email,provider")
    with pytest.raises(ValueError):
        store.export(tmp_path / "x.json", "json")
    got = duckdb.sql(f"SELECT cost FROM '{tmp_path / 'x.parquet'}'").fetchall()
    assert got == [(Decimal("0.1250000000"),)]
    store.close()
