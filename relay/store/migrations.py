"""Numbered schema migrations, applied in order, each exactly once, for both stores: the DuckDB
file and PostgreSQL share the numbering; each step has its SQL in both dialects (a step one store
does not need is a no-op there, so a version means the same on both)."""

from __future__ import annotations

from typing import NamedTuple

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
PG_TYPES = {"DOUBLE": "DOUBLE PRECISION"}  # the one ledger type PostgreSQL spells differently


class Migration(NamedTuple):
    version: int
    name: str
    duckdb: str
    postgres: str


NOTHING = "SELECT 1"  # a step this store does not need

_REQUESTS = """
CREATE TABLE requests (
    id VARCHAR NOT NULL{pk}, ts TIMESTAMP NOT NULL, date DATE NOT NULL,
    email VARCHAR NOT NULL, provider VARCHAR NOT NULL, path VARCHAR NOT NULL,
    model VARCHAR NOT NULL, status INTEGER NOT NULL, outcome VARCHAR NOT NULL,
    input_tokens BIGINT NOT NULL, output_tokens BIGINT NOT NULL,
    cached_tokens BIGINT NOT NULL, reasoning_tokens BIGINT NOT NULL,
    cost DECIMAL(18,10) NOT NULL, cost_source VARCHAR NOT NULL,
    latency_ms {double} NOT NULL, streamed BOOLEAN NOT NULL, origin VARCHAR NOT NULL
);
"""

_DAILY = """
CREATE TABLE daily (
    email VARCHAR NOT NULL, date DATE NOT NULL, cost DECIMAL(18,10) NOT NULL,
    PRIMARY KEY (email, date)
);
INSERT INTO daily SELECT email, date, sum(cost) FROM requests GROUP BY email, date;
"""

# Shared budgets (PostgreSQL). Reservations ("holds") and rate-limit windows are UNLOGGED: they
# live seconds, a crash may forget them (that frees money, never spends it), and a transaction
# that writes only unlogged tables commits without waiting for the WAL to reach the disk.
# Admission locks the user (a transaction-scoped advisory lock on a hash of the email; two users
# sharing a hash only wait for each other) so admissions of one user run one at a time across all
# relay processes, then reads spend and live holds in ONE statement (one snapshot: a settle that
# commits meanwhile is seen whole or not at all), then inserts the hold and commits.
_SHARED_BUDGETS = """
CREATE UNLOGGED TABLE holds (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email VARCHAR NOT NULL,
    amount DECIMAL(18,10) NOT NULL,
    expires TIMESTAMPTZ NOT NULL
);
CREATE INDEX holds_email ON holds (email);
CREATE INDEX holds_expires ON holds (expires);
CREATE UNLOGGED TABLE rates (email VARCHAR PRIMARY KEY, calls TIMESTAMPTZ[] NOT NULL);

-- A batch of admissions (the calls that arrived during the previous round trip), answered by
-- position n. Users are locked in the order of their lock keys, so two relays' batches never wait
-- for each other in a cycle. p_limit NULL: the rate limit only (free calls).
CREATE FUNCTION aipipe_admit(
    p_email VARCHAR[], p_since DATE[], p_limit DECIMAL[], p_want DECIMAL[], p_rpm INTEGER[],
    p_lease DOUBLE PRECISION
) RETURNS TABLE (n INTEGER, hold BIGINT, held DECIMAL, spent DECIMAL, reserved DECIMAL, retry_after INTEGER)
LANGUAGE plpgsql AS $$
DECLARE
    i INTEGER;
    v_order INTEGER[] := '{1}';
    v_email VARCHAR;
    v_now TIMESTAMPTZ;
    v_calls TIMESTAMPTZ[];
BEGIN
    IF cardinality(p_email) > 1 THEN
        SELECT array_agg(t.i ORDER BY hashtext(t.e), t.i) INTO v_order
          FROM unnest(p_email) WITH ORDINALITY AS t(e, i);
    END IF;
    FOREACH i IN ARRAY v_order LOOP
        v_email := p_email[i];
        PERFORM pg_advisory_xact_lock(1634300528, hashtext(v_email));
        v_now := clock_timestamp();
        n := i; hold := NULL; held := NULL; spent := NULL; reserved := NULL; retry_after := NULL;
        IF p_rpm[i] IS NOT NULL THEN  -- the user's calls in the last minute, through every relay
            SELECT array(
                SELECT c FROM unnest(x.calls) AS c WHERE c > v_now - interval '60 seconds' ORDER BY c
            ) INTO v_calls FROM rates AS x WHERE x.email = v_email;
            v_calls := coalesce(v_calls, '{}');
            IF cardinality(v_calls) >= p_rpm[i] THEN
                retry_after := greatest(
                    1, ceil(extract(epoch FROM v_calls[1] + interval '60 seconds' - v_now)));
                RETURN NEXT;
                CONTINUE;
            END IF;
            INSERT INTO rates AS x VALUES (v_email, v_calls || v_now)
              ON CONFLICT (email) DO UPDATE SET calls = excluded.calls;
        END IF;
        -- One statement, one snapshot: spend and live holds as of one moment.
        SELECT
            (SELECT coalesce(sum(d.cost), 0) FROM daily AS d
              WHERE d.email = v_email AND d.date >= p_since[i]),
            (SELECT coalesce(sum(h.amount), 0) FROM holds AS h
              WHERE h.email = v_email AND h.expires > v_now)
          INTO spent, reserved;
        IF p_limit[i] IS NOT NULL AND p_limit[i] - spent - reserved > 0 THEN
            held := least(greatest(p_want[i], 0), p_limit[i] - spent - reserved);
            INSERT INTO holds (email, amount, expires)
              VALUES (v_email, held, v_now + p_lease * interval '1 second') RETURNING id INTO hold;
        END IF;
        RETURN NEXT;
    END LOOP;
END $$;

-- A batch of settles: release the holds and add what the calls cost to their days, in one
-- transaction, so any relay's next admission sees the cost where the hold was. Returns the spend
-- in each asked window (p_user, p_from) by position n. Day rows are updated in key order (no
-- deadlock between two relays' batches). The commit does not wait for the disk (a WAL flush is
-- 1-4 ms on a plain disk, on every call): PostgreSQL's WAL writer makes it durable within
-- 3 x wal_writer_delay (0.6 s), so only a PostgreSQL crash (not a restart) can forget the day
-- totals of the calls settled in that last moment (their ledger rows are kept).
CREATE FUNCTION aipipe_settle(
    p_holds BIGINT[], p_email VARCHAR[], p_date DATE[], p_cost DECIMAL[], p_user VARCHAR[], p_from DATE[]
) RETURNS TABLE (n INTEGER, spent DECIMAL)
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM set_config('synchronous_commit', 'off', true);
    IF cardinality(p_holds) > 0 THEN
        DELETE FROM holds WHERE id = ANY(p_holds);
    END IF;
    IF cardinality(p_email) > 0 THEN
        INSERT INTO daily AS d
            SELECT t.e, t.dt, sum(t.c) FROM unnest(p_email, p_date, p_cost) AS t(e, dt, c)
            GROUP BY t.e, t.dt ORDER BY t.e, t.dt
          ON CONFLICT (email, date) DO UPDATE SET cost = d.cost + excluded.cost;
    END IF;
    FOR i IN 1..coalesce(cardinality(p_user), 0) LOOP
        n := i;
        SELECT coalesce(sum(x.cost), 0) INTO spent FROM daily AS x
          WHERE x.email = p_user[i] AND x.date >= p_from[i];
        RETURN NEXT;
    END LOOP;
END $$;
"""

# What `aipipe copy` has added to `daily` from each DuckDB install, so a second copy adds only
# the difference (idempotent) and never overwrites spend made through PostgreSQL since.
_IMPORTS = """
CREATE TABLE imported_daily (
    source VARCHAR NOT NULL, email VARCHAR NOT NULL, date DATE NOT NULL, cost DECIMAL(18,10) NOT NULL,
    PRIMARY KEY (source, email, date)
);
"""

MIGRATIONS: list[Migration] = [
    Migration(
        1,
        "per-request ledger",
        _REQUESTS.format(pk="", double="DOUBLE"),
        # Unique ids make a retried batch (and a repeated copy) land once; the indexes serve
        # /usage/requests and the admin date ranges (DuckDB scans its columns instead).
        _REQUESTS.format(pk=" PRIMARY KEY", double="DOUBLE PRECISION")
        + "CREATE INDEX requests_email_ts ON requests (email, ts);"
        + "CREATE INDEX requests_date ON requests (date);",
    ),
    Migration(
        2, "per-day cost per email (what budgets read), backfilled from the ledger", _DAILY, _DAILY
    ),
    Migration(
        3,
        "the last batch written, so a retried write is not applied twice",
        "CREATE TABLE last_batch (id VARCHAR); INSERT INTO last_batch VALUES ('');",
        NOTHING,  # PostgreSQL: unique ledger ids already make a retried batch land once
    ),
    Migration(
        4, "shared budgets: reservations with leases, rate-limit windows", NOTHING, _SHARED_BUDGETS
    ),
    Migration(5, "what copies from DuckDB installs added to the day totals", NOTHING, _IMPORTS),
]
