"""Numbered schema migrations for the usage database, applied in order, each exactly once."""

from __future__ import annotations

# The ledger's columns, in the order /admin/export and `aipipe export` write them.
LEDGER_COLUMNS: tuple[tuple[str, str], ...] = (
    ("id", "VARCHAR"),
    ("ts", "TIMESTAMP"),
    ("date", "DATE"),
    ("email", "VARCHAR"),
    ("provider", "VARCHAR"),
    ("path", "VARCHAR"),
    ("model", "VARCHAR"),
    ("status", "INTEGER"),
    ("outcome", "VARCHAR"),
    ("input_tokens", "BIGINT"),
    ("output_tokens", "BIGINT"),
    ("cached_tokens", "BIGINT"),
    ("reasoning_tokens", "BIGINT"),
    ("cost", "DECIMAL(18,10)"),
    ("cost_source", "VARCHAR"),
    ("latency_ms", "DOUBLE"),
    ("streamed", "BOOLEAN"),
    ("origin", "VARCHAR"),
)

MIGRATIONS: list[tuple[int, str, str]] = [
    (
        1,
        "per-request ledger",
        """
        CREATE TABLE requests (
            id VARCHAR NOT NULL, ts TIMESTAMP NOT NULL, date DATE NOT NULL,
            email VARCHAR NOT NULL, provider VARCHAR NOT NULL, path VARCHAR NOT NULL,
            model VARCHAR NOT NULL, status INTEGER NOT NULL, outcome VARCHAR NOT NULL,
            input_tokens BIGINT NOT NULL, output_tokens BIGINT NOT NULL,
            cached_tokens BIGINT NOT NULL, reasoning_tokens BIGINT NOT NULL,
            cost DECIMAL(18,10) NOT NULL, cost_source VARCHAR NOT NULL,
            latency_ms DOUBLE NOT NULL, streamed BOOLEAN NOT NULL, origin VARCHAR NOT NULL
        );
        """,
    ),
    (
        2,
        "per-day cost per email (what budgets read), backfilled from the ledger",
        """
        CREATE TABLE daily (
            email VARCHAR NOT NULL, date DATE NOT NULL, cost DECIMAL(18,10) NOT NULL,
            PRIMARY KEY (email, date)
        );
        INSERT INTO daily SELECT email, date, sum(cost) FROM requests GROUP BY email, date;
        """,
    ),
    (
        3,
        "the last batch written, so a retried write is not applied twice",
        "CREATE TABLE last_batch (id VARCHAR); INSERT INTO last_batch VALUES ('');",
    ),
]
