"""Anomalies: request spikes, odd hours, rare models, provider failures.

Each question is one function returning a pandas DataFrame. Sums run in DuckDB as DECIMAL; results
are cast to DOUBLE only at the end, for tables and charts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from relay.analysis.source import df as _df

if TYPE_CHECKING:
    import duckdb
    import pandas as pd


def user_hour_spikes(
    con: duckdb.DuckDBPyConnection, min_requests: int = 20, factor: float = 10
) -> pd.DataFrame:
    """Hours in which one user made at least `min_requests` and `factor` × their usual busy
    hour (90th percentile of their hourly counts): leaked tokens and runaway scripts."""
    return _df(con, """
        WITH h AS (
            SELECT email, date_trunc('hour', ts) AS hour, count(*) AS requests
            FROM requests GROUP BY ALL),
        q AS (SELECT email, quantile_cont(requests, 0.9) AS usual FROM h GROUP BY email),
        f AS (SELECT h.*, q.usual FROM h JOIN q USING (email)
              WHERE requests >= ? AND requests >= ? * greatest(usual, 1))
        SELECT f.email, f.hour, any_value(f.requests) AS requests, any_value(f.usual) AS usual,
               count(*) FILTER (WHERE r.outcome = 'refused') AS refused,
               sum(r.cost)::DOUBLE AS cost_usd, mode(r.model) AS model, mode(r.origin) AS origin
        FROM f JOIN requests r
             ON r.email = f.email AND date_trunc('hour', r.ts) = f.hour
        GROUP BY f.email, f.hour
        ORDER BY requests DESC""", [min_requests, factor])


def hourly_profile(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Domain × UTC hour of day: each hour's share of the domain's requests."""
    return _df(con, """
        WITH x AS (SELECT u.domain, hour(r.ts) AS hour FROM requests r JOIN users u USING (email))
        SELECT domain, hour, count(*) AS requests,
               count(*) / sum(count(*)) OVER (PARTITION BY domain) AS share
        FROM x GROUP BY domain, hour ORDER BY domain, hour""")


def off_hours_users(
    con: duckdb.DuckDBPyConnection,
    min_requests: int = 20,
    min_share: float = 0.5,
    quiet: float = 0.02,
) -> pd.DataFrame:
    """Users with at least `min_share` of their requests in their domain's quiet hours (UTC
    hours holding under `quiet` of the domain's traffic): bots, or a token used elsewhere."""
    return _df(con, """
        WITH x AS (SELECT u.domain, hour(r.ts) AS h FROM requests r JOIN users u USING (email)),
        dh AS (SELECT domain, h, count(*) / sum(count(*)) OVER (PARTITION BY domain) AS share
               FROM x GROUP BY domain, h),
        q AS (SELECT domain, h FROM dh WHERE share < ?),
        uh AS (
            SELECT r.email, u.domain, count(*) AS requests, count(q.h) AS quiet_requests
            FROM requests r JOIN users u USING (email)
                 LEFT JOIN q ON q.domain = u.domain AND q.h = hour(r.ts)
            GROUP BY r.email, u.domain),
        f AS (SELECT * FROM uh WHERE requests >= ? AND quiet_requests / requests >= ?)
        SELECT f.email, f.domain, f.requests, f.quiet_requests,
               f.quiet_requests / f.requests AS quiet_share,
               mode(r.model) AS model, mode(r.origin) AS origin
        FROM f JOIN requests r USING (email)
        GROUP BY f.email, f.domain, f.requests, f.quiet_requests
        ORDER BY quiet_share DESC, requests DESC""", [quiet, min_requests, min_share])


def rare_models(con: duckdb.DuckDBPyConnection, max_users: int = 2) -> pd.DataFrame:
    """Models used by at most `max_users` people, costliest first: who is on what, and why."""
    return _df(con, """
        WITH m AS (SELECT provider, model FROM requests WHERE model <> '' GROUP BY ALL
                   HAVING count(DISTINCT email) <= ?)
        SELECT provider, model, count(DISTINCT email) AS users, count(*) AS requests,
               sum(cost)::DOUBLE AS cost_usd, string_agg(DISTINCT email, ', ') AS emails
        FROM requests JOIN m USING (provider, model) GROUP BY ALL
        ORDER BY cost_usd DESC""", [max_users])


def failure_rates(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Date × provider: share of forwarded requests that failed (error or broken)."""
    return _df(con, """
        SELECT date, provider, count(*) AS requests,
               avg((outcome IN ('error', 'broken'))::INTEGER) AS failure_rate
        FROM requests WHERE outcome <> 'refused' GROUP BY ALL ORDER BY date, provider""")


def failure_bursts(
    con: duckdb.DuckDBPyConnection, min_requests: int = 30, min_z: float = 8
) -> pd.DataFrame:
    """Provider-hours whose failure rate is `min_z` standard deviations above the provider's
    own rate over the whole period (a binomial z-score): outages, not everyday noise."""
    return _df(con, """
        WITH h AS (
            SELECT provider, date_trunc('hour', ts) AS hour, count(*) AS requests,
                   count(*) FILTER (WHERE outcome IN ('error', 'broken')) AS failures,
                   mode(status) FILTER (WHERE outcome IN ('error', 'broken')) AS top_status
            FROM requests WHERE outcome <> 'refused' GROUP BY ALL),
        b AS (SELECT provider, sum(failures) / sum(requests) AS base FROM h GROUP BY provider),
        z AS (
            SELECT h.*, failures / requests AS rate, b.base,
                   (failures - requests * b.base)
                   / sqrt(greatest(requests * b.base * (1 - b.base), 1e-9)) AS z
            FROM h JOIN b USING (provider))
        SELECT provider, hour, requests, failures, rate, base, z, top_status
        FROM z WHERE requests >= ? AND z >= ? ORDER BY z DESC""", [min_requests, min_z])


def user_hourly(con: duckdb.DuckDBPyConnection, email: str) -> pd.DataFrame:
    """One user's requests, refusals and spend per hour: the shape of a spike."""
    return _df(con, """
        SELECT date_trunc('hour', ts) AS hour, count(*) AS requests,
               count(*) FILTER (WHERE outcome = 'refused') AS refused,
               sum(cost)::DOUBLE AS cost_usd
        FROM requests WHERE email = ? GROUP BY ALL ORDER BY hour""", [email])
