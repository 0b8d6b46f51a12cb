"""The command line against the PostgreSQL store: `aipipe copy` moves a DuckDB install into
PostgreSQL with totals exact and idempotent; `usage` and `export` read PostgreSQL directly."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from relay.cli import main
from relay.clock import utc_today
from relay.store import Store
from tests.test_pg_store import _row, scalar


def _duckdb_install(path: Path, rows: list, overwrite: tuple | None = None) -> None:
    store = Store(path).open(background=False)
    for row in rows:
        store.record(row)
    if overwrite:
        store.set_day_cost(*overwrite)
    store.close()


def _totals(url: str) -> tuple:
    return (
        scalar(url, "SELECT count(*) FROM requests"),
        scalar(url, "SELECT sum(cost) FROM requests"),
        scalar(url, "SELECT sum(cost) FROM daily"),
    )


def test_copy_round_trips_totals_exactly_and_is_idempotent(
    tmp_path: Path, pg_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A DuckDB install (rows on two days, one day overwritten by an admin, two rows that share an
    id) copied into PostgreSQL: rows, ledger cost and day totals are equal on both sides; copying
    again adds nothing; copying after the install served more adds exactly the rest; spend made
    through PostgreSQL meanwhile is kept."""
    today = utc_today()
    yesterday = today - timedelta(days=1)
    duck = tmp_path / "aipipe.duckdb"
    rows = [_row("a@x.org", Decimal("0.0000001234"), id=f"r{i}") for i in range(5)]
    rows += [_row("b@x.org", Decimal("0.25"), id="same", date=yesterday) for _ in range(2)]
    _duckdb_install(duck, rows, overwrite=("c@x.org", yesterday, Decimal("1.5")))
    assert main(["copy", "--from", str(duck), "--to", pg_url]) == 0
    out = capsys.readouterr().out
    assert "DuckDB" in out and "PostgreSQL" in out and "added 7 ledger rows" in out
    expected = (7, Decimal("0.500000617"), Decimal("2.000000617"))
    assert _totals(pg_url) == expected

    assert main(["copy", "--from", str(duck), "--to", pg_url]) == 0
    assert "added 0 ledger rows" in capsys.readouterr().out
    assert _totals(pg_url) == expected

    # Live spend through PostgreSQL, then more DuckDB traffic copied later.
    scalar(pg_url, "UPDATE daily SET cost = cost + 1 WHERE email = 'a@x.org'")
    _duckdb_install(duck, [_row("a@x.org", Decimal("0.1"), id="late")])
    assert main(["copy", "--from", str(duck), "--to", pg_url]) == 0
    assert "added 1 ledger rows" in capsys.readouterr().out
    assert _totals(pg_url) == (8, Decimal("0.600000617"), Decimal("3.100000617"))


def test_usage_and_export_read_postgres(
    tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """With AIPIPE_DATABASE_URL set, `aipipe usage` and `aipipe export` answer from PostgreSQL
    (no relay has to run, no DuckDB file is made)."""
    duck = tmp_path / "seed.duckdb"
    _duckdb_install(duck, [_row("a@x.org", Decimal("0.125"), id="one")])
    assert main(["copy", "--from", str(duck), "--to", pg_url]) == 0
    monkeypatch.setenv("AIPIPE_DATABASE_URL", pg_url)
    monkeypatch.setenv("AIPIPE_SECRET", "x" * 32)
    monkeypatch.setenv("AIPIPE_DATA_DIR", str(tmp_path / "data"))
    capsys.readouterr()
    assert main(["usage", "a@x.org"]) == 0
    assert "0.125000" in capsys.readouterr().out
    assert main(["export", "--out", str(tmp_path / "ledger.csv")]) == 0
    assert (tmp_path / "ledger.csv").read_text().count("\n") == 2
    assert not (tmp_path / "data" / "aipipe.duckdb").exists()


def test_unreachable_database_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A PostgreSQL URL nothing answers on: the command says so in one line (exit 1)."""
    from testkit.relay_process import free_port

    monkeypatch.setenv("AIPIPE_DATABASE_URL", f"postgresql://u:secretpw@127.0.0.1:{free_port()}/db")
    monkeypatch.setenv("AIPIPE_SECRET", "x" * 32)
    assert main(["usage"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("aipipe: cannot open the PostgreSQL store") and "secretpw" not in err
