"""Applying the numbered migrations (relay/store/migrations.py) to a PostgreSQL database."""

from __future__ import annotations

import asyncpg

from relay.clock import utc_now
from relay.store.migrations import MIGRATIONS

MIGRATION_LOCK = 1634300529  # advisory lock key: replicas starting together migrate one at a time


async def migrate(con: asyncpg.Connection) -> list[int]:
    """Apply the migrations this database has not seen yet, one relay at a time (advisory lock)."""
    await con.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK)
    try:
        await con.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations "
            "(version INTEGER PRIMARY KEY, name VARCHAR, applied_at TIMESTAMP)"
        )
        done = {v for (v,) in await con.fetch("SELECT version FROM schema_migrations")}
        applied = []
        for m in MIGRATIONS:
            if m.version in done:
                continue
            async with con.transaction():
                await con.execute(m.postgres)
                await con.execute(
                    "INSERT INTO schema_migrations VALUES ($1, $2, $3)", m.version, m.name, utc_now()
                )
            applied.append(m.version)
        return applied
    finally:
        await con.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK)
