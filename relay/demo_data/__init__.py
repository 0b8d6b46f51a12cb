"""A realistic synthetic request ledger, so the admin notebooks can be tried without a live relay.

`write_demo_ledger(out, rows)` writes the ledger in the export's exact schema (Parquet or CSV) and,
beside it, the budget policy it was generated under (`policy_path_for`). What is in it — users,
domains, models and prices, planted anomalies — is listed in `catalog`; how it is generated (one
vectorised DuckDB query, deterministic by seed) in `generate`.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

from relay.demo_data.catalog import BLOCKED_BUDGET, DEFAULT_BUDGET, DOMAINS, VIP_BUDGET
from relay.demo_data.generate import build
from relay.store.migrations import LEDGER_COLUMNS

__all__ = ["demo_policy_toml", "policy_path_for", "write_demo_ledger"]


def policy_path_for(ledger: Path) -> Path:
    """Where write_demo_ledger puts the matching policy: `usage.parquet` → `usage.policy.toml`."""
    return ledger.with_name(ledger.name.rsplit(".", 1)[0] + ".policy.toml")


def write_demo_ledger(
    out: Path,
    rows: int,
    *,
    seed: int = 7,
    days: int = 60,
    end: date | None = None,
    policy: bool = True,
) -> int:
    """Write `rows` synthetic ledger rows to `out` (Parquet or CSV by extension), covering `days`
    UTC dates ending at `end` (default: today, UTC). With `policy`, also write the matching budget
    policy TOML at `policy_path_for(out)`. Same arguments, same file. Returns the rows written."""
    import duckdb  # lazily: the relay server itself never needs this module

    out = Path(out)
    fmt = _format_of(out)
    if rows < 0 or days < 1 or not 0 <= seed < 2**31:
        raise ValueError("rows must be >= 0, days >= 1 and seed in [0, 2**31)")
    end = end or datetime.now(UTC).date()
    con = duckdb.connect()
    try:
        vip, blocked = build(con, rows, seed=seed, days=days, end=end)
        cols = ", ".join(name for name, _ in LEDGER_COLUMNS)
        target = str(out).replace("'", "''")
        options = "FORMAT parquet, COMPRESSION zstd" if fmt == "parquet" else "FORMAT csv, HEADER"
        con.execute(f"COPY (SELECT {cols} FROM ledger ORDER BY ts, id) TO '{target}' ({options})")
        written = con.execute("SELECT count(*) FROM req").fetchone()[0]  # type: ignore[index]
    finally:
        con.close()
    if policy:
        policy_path_for(out).write_text(demo_policy_toml(vip, blocked), encoding="utf-8")
    return int(written)


def demo_policy_toml(vip: str, blocked: str) -> str:
    """The budget policy the demo ledger was generated under (refusals follow it exactly)."""
    lines = [
        "# Budget policy of an `aipipe demo-data` ledger: the refusals in it follow these limits.",
        "[budget]",
        f'"*" = {{ limit = {DEFAULT_BUDGET[0]}, days = {DEFAULT_BUDGET[1]} }}',
    ]
    for d in DOMAINS:
        if d.limit is not None:
            lines.append(f'"@{d.domain}" = {{ limit = {d.limit}, days = {d.days} }}')
    if vip:
        lines.append(f'"{vip}" = {{ limit = {VIP_BUDGET[0]}, days = {VIP_BUDGET[1]} }}')
    if blocked:
        lines.append(f'"{blocked}" = {{ limit = {BLOCKED_BUDGET[0]}, days = {BLOCKED_BUDGET[1]} }}')
    return "\n".join(lines) + "\n"


def _format_of(out: Path) -> str:
    suffix = out.suffix.lower()
    if suffix in {".parquet", ".pq"}:
        return "parquet"
    if suffix == ".csv":
        return "csv"
    raise ValueError(f"{out}: the file name must end in .parquet or .csv")
