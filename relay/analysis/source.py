"""Where the notebooks' ledger comes from, and the in-memory DuckDB every query runs in.

The notebooks read an export (Parquet or CSV), never the relay's live database: DuckDB lets one
process hold that file. Budgets follow the relay's lookup order (exact email, then @domain, then
"*", else no budget); with no policy file known, limits are NULL (unknown), not guessed.
"""

from __future__ import annotations

import csv
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import httpx

from relay.demo_data import policy_path_for, write_demo_ledger
from relay.policy import Policy, load_policy
from relay.store.migrations import LEDGER_COLUMNS

if TYPE_CHECKING:
    import duckdb
    import pandas as pd

DEMO_ROWS = 200_000


class SourceError(RuntimeError):
    """The notebooks' data source cannot be used; the message says which setting and why."""


@dataclass(frozen=True, slots=True)
class Source:
    kind: str  # "file" (AIPIPE_USAGE) | "relay" (AIPIPE_URL) | "demo"
    ledger: Path
    policy: Path | None  # budget policy TOML, when known
    note: str  # one line for the notebook reader


def choose_source(
    env: Mapping[str, str],
    *,
    cache_dir: Path | None = None,
    demo_rows: int = DEMO_ROWS,
    transport: httpx.BaseTransport | None = None,
) -> Source:
    """AIPIPE_USAGE (an export file), else AIPIPE_URL + AIPIPE_ADMIN_TOKEN (download the export
    from a running relay), else a generated demo ledger. AIPIPE_CONFIG names the policy file;
    without it, a `<ledger>.policy.toml` beside the ledger is used when present."""
    cache = cache_dir or Path(tempfile.gettempdir()) / "aipipe-notebooks"
    config = Path(env["AIPIPE_CONFIG"]).expanduser() if env.get("AIPIPE_CONFIG") else None
    if env.get("AIPIPE_USAGE"):
        ledger = Path(env["AIPIPE_USAGE"]).expanduser()
        if not ledger.is_file():
            raise SourceError(f"AIPIPE_USAGE={ledger}: no such file")
        kind, note = "file", f"export file {ledger}"
    elif env.get("AIPIPE_URL"):
        if not env.get("AIPIPE_ADMIN_TOKEN"):
            raise SourceError("AIPIPE_URL is set but AIPIPE_ADMIN_TOKEN is not (an admin's token)")
        cache.mkdir(parents=True, exist_ok=True)
        ledger = fetch_export(
            env["AIPIPE_URL"], env["AIPIPE_ADMIN_TOKEN"], cache / "export.parquet",
            transport=transport,
        )  # fmt: skip
        kind, note = "relay", f"export downloaded from {env['AIPIPE_URL']}"
    else:
        cache.mkdir(parents=True, exist_ok=True)
        today = datetime.now(UTC).date()
        ledger = cache / f"demo-{demo_rows}-{today}.parquet"
        if not (ledger.is_file() and policy_path_for(ledger).is_file()):
            write_demo_ledger(ledger, demo_rows, end=today)
        kind, note = "demo", f"generated demo data ({demo_rows:,} requests) at {ledger}"
    sibling = policy_path_for(ledger)
    policy = config or (sibling if sibling.is_file() else None)
    if config is not None and not config.is_file():
        raise SourceError(f"AIPIPE_CONFIG={config}: no such file")
    note += f"; budgets from {policy}" if policy else "; no policy file: budget limits unknown"
    return Source(kind, ledger, policy, note)


def fetch_export(
    base_url: str,
    token: str,
    dest: Path,
    *,
    transport: httpx.BaseTransport | None = None,
    timeout: float = 300.0,
) -> Path:
    """Download `<base_url>/admin/export?format=parquet` with an admin token to `dest` (streamed
    to a temporary file first, so a failed download never leaves a half file behind)."""
    url = base_url.rstrip("/") + "/admin/export"
    part = dest.with_name(dest.name + ".part")
    with (
        httpx.Client(transport=transport, timeout=timeout) as client,
        client.stream(
            "GET", url, params={"format": "parquet"}, headers={"Authorization": f"Bearer {token}"}
        ) as response,
    ):
        if response.status_code != 200:
            response.read()
            raise SourceError(f"{url}: HTTP {response.status_code}: {_error_text(response)}")
        with part.open("wb") as f:
            for chunk in response.iter_bytes():
                f.write(chunk)
    part.replace(dest)
    return dest


def _error_text(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    if isinstance(body, dict):
        return str(body.get("message") or body.get("error") or body)[:200]
    return str(body)[:200]


def connect(source: Source) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with the tables every query uses: `requests` (the ledger),
    `rules` (the policy's budgets), `users` (each email's budget rule) and `meta` (as_of)."""
    import duckdb  # lazily: only the notebooks need it from this module

    con = duckdb.connect()
    path = str(source.ledger).replace("'", "''")
    names = [name for name, _ in LEDGER_COLUMNS]
    try:
        if source.ledger.suffix.lower() == ".csv":
            with source.ledger.open(newline="", encoding="utf-8") as f:
                have = set(next(csv.reader(f), []))
            types = ", ".join(f"'{name}': '{kind}'" for name, kind in LEDGER_COLUMNS)
            # CSV cannot tell '' from NULL; ledger text columns are never NULL, so read ''.
            text = ", ".join(f"coalesce({n}, '') AS {n}" for n, k in LEDGER_COLUMNS if k == "VARCHAR")
            raw = f"read_csv('{path}', header = true, columns = {{{types}}})"
            reader = f"(SELECT * REPLACE ({text}) FROM {raw})"
        else:
            reader = f"read_parquet('{path}')"
            have = {row[0] for row in con.execute(f"DESCRIBE SELECT * FROM {reader}").fetchall()}
        missing = [name for name in names if name not in have]
        if missing:
            raise SourceError(f"{source.ledger}: not a ledger export; missing columns {missing}")
        con.execute(f"CREATE TABLE requests AS SELECT {', '.join(names)} FROM {reader}")
    except (OSError, UnicodeDecodeError, duckdb.Error) as e:
        raise SourceError(f"{source.ledger}: cannot read the ledger: {e}") from e
    policy = load_policy(source.policy) if source.policy else None
    _load_budgets(con, policy)
    return con


def _load_budgets(con: duckdb.DuckDBPyConnection, policy: Policy | None) -> None:
    con.execute("CREATE TABLE rules (rule VARCHAR, limit_usd DECIMAL(18,10), days INTEGER)")
    if policy is not None:
        rows = [(key, b.limit, b.days) for key, b in policy.budgets.items()]
        if rows:
            con.executemany("INSERT INTO rules VALUES (?, ?, ?)", rows)
    # The relay's lookup: exact email, then @domain, then "*"; a known policy with no match
    # means no budget (limit 0); an unknown policy means NULL (unknown), not 0.
    none_rule = "'(none)'" if policy is not None else "NULL"
    none_limit = "0" if policy is not None else "NULL"
    con.execute(
        f"""CREATE TABLE users AS
        WITH e AS (SELECT DISTINCT email, split_part(lower(email), '@', 2) AS domain
                   FROM requests)
        SELECT e.email, e.domain,
               coalesce(x.rule, d.rule, s.rule, {none_rule}) AS rule,
               coalesce(x.limit_usd, d.limit_usd, s.limit_usd, {none_limit}) AS limit_usd,
               coalesce(x.days, d.days, s.days, 1) AS days
        FROM e LEFT JOIN rules x ON x.rule = lower(e.email)
               LEFT JOIN rules d ON d.rule = '@' || e.domain
               LEFT JOIN rules s ON s.rule = '*';
        CREATE TABLE meta AS SELECT max(date) AS as_of, min(date) AS first FROM requests;"""
    )


def df(
    con: duckdb.DuckDBPyConnection, sql: str, params: list[object] | None = None
) -> pd.DataFrame:
    """Run one query; the result as a pandas DataFrame."""
    return con.execute(sql, params or []).df()
