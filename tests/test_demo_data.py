"""The synthetic ledger: exact export schema, deterministic, varied, priced and budgeted like the relay."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from relay.demo_data import policy_path_for, write_demo_ledger
from relay.demo_data.catalog import MODELS, prices_of
from relay.policy import load_policy
from relay.store.migrations import LEDGER_COLUMNS

END = date(2025, 6, 30)
ROWS = 30_000


@pytest.fixture(scope="module")
def ledger(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("demo") / "usage.parquet"
    assert write_demo_ledger(out, ROWS, end=END) == ROWS
    return out


@pytest.fixture(scope="module")
def con(ledger: Path) -> duckdb.DuckDBPyConnection:
    c = duckdb.connect()
    c.execute(f"CREATE TABLE r AS SELECT * FROM read_parquet('{ledger}')")
    return c


def one(con: duckdb.DuckDBPyConnection, sql: str) -> object:
    row = con.execute(sql).fetchone()
    assert row is not None
    return row[0]


def test_schema_is_the_exports_columns_in_order(con: duckdb.DuckDBPyConnection) -> None:
    """The demo file has exactly the ledger's columns, names, order and types."""
    described = [(name, kind) for name, kind, *_ in con.execute("DESCRIBE r").fetchall()]
    assert described == list(LEDGER_COLUMNS)
    assert one(con, "SELECT count(*) FROM r") == ROWS


def test_rows_are_well_formed(con: duckdb.DuckDBPyConnection) -> None:
    """Ids are unique 32-hex strings, date is ts's UTC date, dates span the window, money >= 0."""
    assert one(con, "SELECT count(DISTINCT id) FROM r") == ROWS
    assert one(con, "SELECT bool_and(regexp_full_match(id, '[0-9a-f]{32}')) FROM r")
    assert one(con, "SELECT bool_and(date = ts::DATE) FROM r")
    assert one(con, "SELECT min(date) FROM r") == END - timedelta(days=59)
    assert one(con, "SELECT max(date) FROM r") == END
    assert one(con, "SELECT min(cost) FROM r") >= 0  # type: ignore[operator]
    assert one(con, "SELECT bool_and(cached_tokens <= input_tokens) FROM r")
    assert one(con, "SELECT bool_and(reasoning_tokens <= output_tokens) FROM r")


def test_ledger_is_varied_like_real_traffic(con: duckdb.DuckDBPyConnection) -> None:
    """Every provider, outcome and cost source occurs; streams, scripts and web origins mix."""
    def values(col: str) -> set[object]:
        return {v for (v,) in con.execute(f"SELECT DISTINCT {col} FROM r").fetchall()}

    assert values("provider") == {"openai", "openrouter", "gemini", "proxy"}
    assert values("outcome") == {"ok", "error", "aborted", "broken", "refused"}
    assert values("cost_source") == {"reported", "computed", "estimated", "free"}
    assert values("streamed") == {True, False}
    assert "" in values("origin") and len(values("origin")) > 5
    assert len(values("split_part(email, '@', 2)")) == 5
    # heavy tail: the top 10% of users spend far more than the bottom half
    top, bottom = con.execute(
        """WITH u AS (SELECT email, sum(cost) c, ntile(10) OVER (ORDER BY sum(cost) DESC) t
                      FROM r GROUP BY email)
           SELECT sum(c) FILTER (WHERE t = 1), sum(c) FILTER (WHERE t >= 6) FROM u"""
    ).fetchone()  # type: ignore[misc]
    assert top > 3 * bottom


def test_outcomes_carry_consistent_status_tokens_and_cost(con: duckdb.DuckDBPyConnection) -> None:
    """Refused → 429, nothing used or paid; errors cost nothing; aborted streams were streams."""
    assert con.execute(
        """SELECT DISTINCT status, input_tokens + output_tokens, cost, cost_source
           FROM r WHERE outcome = 'refused'"""
    ).fetchall() == [(429, 0, Decimal(0), "free")]
    assert one(con, "SELECT max(cost) FROM r WHERE outcome = 'error'") == 0
    assert one(con, "SELECT bool_and(status >= 400) FROM r WHERE outcome = 'error'")
    assert one(con, "SELECT bool_and(streamed) FROM r WHERE outcome = 'aborted'")
    assert one(con, "SELECT max(cost) FROM r WHERE provider = 'proxy'") == 0


def test_computed_costs_are_tokens_times_the_price_table(con: duckdb.DuckDBPyConnection) -> None:
    """A 'computed' cost equals the tokens × the relay's per-1M prices, to the last decimal."""
    prices = {(m.provider, m.model): prices_of(m) for m in MODELS}
    rows = con.execute(
        """SELECT provider, model, input_tokens, cached_tokens, output_tokens, cost FROM r
           WHERE cost_source = 'computed' AND cost > 0 ORDER BY id LIMIT 500"""
    ).fetchall()
    assert len(rows) == 500
    for provider, model, inp, cached, out, cost in rows:
        p_in, p_cached, p_out = prices[(provider, model)]
        expected = ((inp - cached) * p_in + cached * p_cached + out * p_out) / 1_000_000
        assert cost == expected.quantize(Decimal("1e-10")), (provider, model)


def test_refusals_follow_the_written_policy(ledger: Path, con: duckdb.DuckDBPyConnection) -> None:
    """Per the policy beside the ledger: window spend never passes a limit by more than one
    request, and every refused request came when the window's spend had reached the limit."""
    policy = load_policy(policy_path_for(ledger))
    assert policy.budget_for("anyone@nowhere.test").limit == Decimal("0.10")
    emails = [e for (e,) in con.execute("SELECT DISTINCT email FROM r").fetchall()]
    budgets = [(e, policy.budget_for(e).limit, policy.budget_for(e).days) for e in emails]
    con.execute("CREATE TEMP TABLE b (email VARCHAR, lim DECIMAL(18,10), days INTEGER)")
    con.executemany("INSERT INTO b VALUES (?, ?, ?)", budgets)
    checks = con.execute(
        """WITH x AS (
               SELECT r.*, b.lim, b.days FROM r JOIN b USING (email)
               WHERE r.email IN (SELECT email FROM r WHERE outcome = 'refused')),
           w AS (  -- spend in the row's budget window, before the row
               SELECT x.id, x.outcome, x.lim, x.cost,
                      (SELECT coalesce(sum(y.cost), 0) FROM r y WHERE y.email = x.email
                       AND y.date > x.date - x.days
                       AND (y.ts < x.ts OR (y.ts = x.ts AND y.id < x.id))) AS before
               FROM x)
           SELECT bool_and(before >= lim) FILTER (WHERE outcome = 'refused'),
                  bool_and(before < lim) FILTER (WHERE outcome <> 'refused' AND cost > 0),
                  count(*) FILTER (WHERE outcome = 'refused')
           FROM w"""
    ).fetchone()
    assert checks is not None
    assert checks[0] is True and checks[1] is True and checks[2] > 0


def test_same_seed_same_rows_other_seed_other_rows(tmp_path: Path) -> None:
    """Deterministic by seed: a rerun gives identical rows, another seed different ones."""
    a, b, c = (tmp_path / n for n in ("a.parquet", "b.parquet", "c.parquet"))
    write_demo_ledger(a, 3000, seed=1, end=END)
    write_demo_ledger(b, 3000, seed=1, end=END)
    write_demo_ledger(c, 3000, seed=2, end=END)
    q = "SELECT * FROM read_parquet('{}') ORDER BY id"
    rows_a = duckdb.sql(q.format(a)).fetchall()
    assert rows_a == duckdb.sql(q.format(b)).fetchall()
    assert rows_a != duckdb.sql(q.format(c)).fetchall()
    assert policy_path_for(a).read_text() == policy_path_for(b).read_text()


def test_csv_output_reads_back_with_the_same_content(tmp_path: Path) -> None:
    """`.csv` writes a header and the same rows as Parquet; other suffixes are refused."""
    pq, csv = tmp_path / "u.parquet", tmp_path / "u.csv"
    write_demo_ledger(pq, 2000, end=END)
    write_demo_ledger(csv, 2000, end=END)
    assert csv.read_text().splitlines()[0] == ",".join(n for n, _ in LEDGER_COLUMNS)
    types = ", ".join(f"'{n}': '{t}'" for n, t in LEDGER_COLUMNS)
    from_csv = duckdb.sql(  # CSV has no NULL/'' distinction: '' (scripts' origin) reads as NULL
        f"SELECT * REPLACE (coalesce(origin, '') AS origin, coalesce(model, '') AS model)"
        f" FROM read_csv('{csv}', header = true, columns = {{{types}}}) ORDER BY id"
    ).fetchall()
    assert from_csv == duckdb.sql(f"SELECT * FROM '{pq}' ORDER BY id").fetchall()
    with pytest.raises(ValueError, match=r"\.parquet or \.csv"):
        write_demo_ledger(tmp_path / "u.json", 10, end=END)


def test_small_and_empty_ledgers_work(tmp_path: Path) -> None:
    """A handful of rows (or none) still writes a valid file and a policy."""
    assert write_demo_ledger(tmp_path / "z.parquet", 0, end=END) == 0
    assert duckdb.sql(f"SELECT count(*) FROM '{tmp_path / 'z.parquet'}'").fetchall() == [(0,)]
    assert write_demo_ledger(tmp_path / "s.parquet", 7, end=END, policy=False) == 7
    assert not policy_path_for(tmp_path / "s.parquet").exists()
