"""Who spends, on what, and against which budget: overview, users and domains.

Each question is one function returning a pandas DataFrame. Sums run in DuckDB as DECIMAL; results
are cast to DOUBLE only at the end, for tables and charts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from relay.analysis.source import df as _df

if TYPE_CHECKING:
    import duckdb
    import pandas as pd


def summary(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """One row: the period, volume, spend and how requests ended."""
    return _df(con, """
        SELECT min(date) AS first_date, max(date) AS last_date, count(DISTINCT date) AS days,
               count(DISTINCT email) AS users, count(*) AS requests,
               sum(cost)::DOUBLE AS cost_usd,
               (sum(cost) / count(*))::DOUBLE AS usd_per_request,
               avg((outcome = 'ok')::INTEGER) AS ok_share,
               avg((outcome = 'refused')::INTEGER) AS refused_share,
               avg(streamed::INTEGER) AS streamed_share,
               (sum(cost) FILTER (WHERE date > (SELECT as_of FROM meta) - 7))::DOUBLE
                   AS cost_last_7d,
               (sum(cost) FILTER (WHERE date <= (SELECT as_of FROM meta) - 7
                   AND date > (SELECT as_of FROM meta) - 14))::DOUBLE AS cost_prev_7d
        FROM requests""")


def spend_by_day(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Date × provider: requests and spend (one row per pair; pivot for charts)."""
    return _df(con, """
        SELECT date, provider, count(*) AS requests, sum(cost)::DOUBLE AS cost_usd
        FROM requests GROUP BY ALL ORDER BY date, provider""")


def spend_by_provider(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Per provider: requests, users, tokens, spend and its share of the total."""
    return _df(con, """
        SELECT provider, count(*) AS requests, count(DISTINCT email) AS users,
               sum(input_tokens + output_tokens) AS tokens, sum(cost)::DOUBLE AS cost_usd,
               (sum(cost) / sum(sum(cost)) OVER ())::DOUBLE AS cost_share
        FROM requests GROUP BY ALL ORDER BY cost_usd DESC""")


def spend_by_model(con: duckdb.DuckDBPyConnection, limit: int = 15) -> pd.DataFrame:
    """The `limit` costliest models, with requests, users and share of spend."""
    return _df(con, """
        SELECT provider, model, count(*) AS requests, count(DISTINCT email) AS users,
               sum(cost)::DOUBLE AS cost_usd,
               (sum(cost) / sum(sum(cost)) OVER ())::DOUBLE AS cost_share
        FROM requests WHERE model <> '' GROUP BY ALL ORDER BY cost_usd DESC LIMIT ?""", [limit])


def top_users(con: duckdb.DuckDBPyConnection, limit: int = 10) -> pd.DataFrame:
    """The `limit` biggest spenders: requests, spend, share, favourite model, refusals."""
    return _df(con, """
        SELECT email, split_part(email, '@', 2) AS domain, count(*) AS requests,
               sum(cost)::DOUBLE AS cost_usd,
               (sum(cost) / (SELECT sum(cost) FROM requests))::DOUBLE AS cost_share,
               mode(model) FILTER (WHERE model <> '') AS top_model,
               count(*) FILTER (WHERE outcome = 'refused') AS refused
        FROM requests GROUP BY ALL ORDER BY cost_usd DESC LIMIT ?""", [limit])


def spend_concentration(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Lorenz curve: users ranked by spend; cumulative share of users vs share of spend."""
    return _df(con, """
        WITH u AS (SELECT email, sum(cost) AS c FROM requests GROUP BY email)
        SELECT row_number() OVER (ORDER BY c DESC, email) / count(*) OVER () AS user_share,
               (sum(c) OVER (ORDER BY c DESC, email) / sum(c) OVER ())::DOUBLE AS cost_share
        FROM u ORDER BY user_share""")



_WINDOWS = """
    daily AS (SELECT email, date, sum(cost) AS cost,
                     count(*) FILTER (WHERE outcome = 'refused') AS refused
              FROM requests GROUP BY ALL),
    windows AS (  -- each user's spend over their budget window ending on each active date
        SELECT d.email, d.date, u.domain, u.rule, u.limit_usd, u.days,
               sum(d.cost) OVER w AS spend, sum(d.refused) OVER w AS refused
        FROM daily d JOIN users u USING (email)
        WINDOW w AS (PARTITION BY d.email ORDER BY d.date
                     RANGE BETWEEN u.days - 1 PRECEDING AND CURRENT ROW))"""


def budget_use(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Each user's spend over their current budget window (ending on the ledger's last date)
    against their limit, with the rule that set it and the requests refused in that window."""
    return _df(con, """
        SELECT u.email, u.domain, u.rule, u.limit_usd::DOUBLE AS limit_usd, u.days,
               coalesce(sum(r.cost), 0)::DOUBLE AS window_spend,
               CASE WHEN u.limit_usd > 0 THEN (coalesce(sum(r.cost), 0) / u.limit_usd)::DOUBLE
                    END AS use_share,
               count(r.id) FILTER (WHERE r.outcome = 'refused') AS refused
        FROM users u LEFT JOIN requests r
             ON r.email = u.email AND r.date > (SELECT as_of FROM meta) - u.days
        GROUP BY u.email, u.domain, u.rule, u.limit_usd, u.days
        ORDER BY use_share DESC NULLS LAST, window_spend DESC""")


def limit_hits(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Users refused for budget at least once: how often, on how many days, first and last."""
    return _df(con, """
        SELECT r.email, u.domain, u.rule, u.limit_usd::DOUBLE AS limit_usd, u.days,
               count(*) FILTER (WHERE outcome = 'refused') AS refused,
               count(DISTINCT date) FILTER (WHERE outcome = 'refused') AS days_refused,
               min(ts) FILTER (WHERE outcome = 'refused') AS first_refused,
               max(ts) FILTER (WHERE outcome = 'refused') AS last_refused,
               sum(cost)::DOUBLE AS cost_usd
        FROM requests r JOIN users u USING (email) GROUP BY ALL
        HAVING count(*) FILTER (WHERE outcome = 'refused') > 0 ORDER BY refused DESC""")


def peak_use(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Each user's highest spend over any budget window in the period, against their limit."""
    return _df(con, f"""
        WITH {_WINDOWS}
        SELECT email, domain, rule, limit_usd::DOUBLE AS limit_usd, days,
               max(spend)::DOUBLE AS peak_spend,
               CASE WHEN limit_usd > 0 THEN (max(spend) / limit_usd)::DOUBLE END AS peak_use,
               max(refused) > 0 AS hit_limit
        FROM windows GROUP BY email, domain, rule, limit_usd, days
        ORDER BY peak_use DESC NULLS LAST""")


def domain_cohorts(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Per email domain: users, activity, spend per user and the share who hit their limit."""
    return _df(con, """
        WITH per_user AS (
            SELECT email, sum(cost) AS cost, count(*) AS requests, max(date) AS last_date,
                   bool_or(outcome = 'refused') AS hit_limit
            FROM requests GROUP BY email)
        SELECT u.domain, mode(u.rule) AS rule, mode(u.limit_usd)::DOUBLE AS limit_usd,
               mode(u.days) AS days, count(*) AS users,
               count(*) FILTER (WHERE p.last_date > (SELECT as_of FROM meta) - 7) AS active_7d,
               sum(p.requests) AS requests, sum(p.cost)::DOUBLE AS cost_usd,
               median(p.cost)::DOUBLE AS median_user_cost,
               quantile_cont(p.cost::DOUBLE, 0.9) AS p90_user_cost,
               avg(p.hit_limit::INTEGER) AS share_hit_limit
        FROM per_user p JOIN users u USING (email) GROUP BY u.domain ORDER BY cost_usd DESC""")


def domain_weekly(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Week × domain: active users and spend (weeks start on Monday)."""
    return _df(con, """
        SELECT date_trunc('week', r.date)::DATE AS week, u.domain,
               count(DISTINCT r.email) AS active_users, sum(r.cost)::DOUBLE AS cost_usd
        FROM requests r JOIN users u USING (email) GROUP BY ALL ORDER BY week, u.domain""")


def budget_suggestions(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Per budget rule: how many users hit it, their peak window demand (spend plus refused
    requests at the user's average cost) and a suggested limit: raise to the 95th percentile
    of demand when ≥5% of users are refused, lower to twice it when nobody is refused and that is
    under half the limit, else keep. A rule with limit 0 is a block: kept."""
    return _df(con, f"""
        WITH avg_cost AS (
            SELECT email, coalesce(sum(cost) FILTER (WHERE outcome <> 'refused')
                   / nullif(count(*) FILTER (WHERE outcome <> 'refused'), 0), 0) AS c
            FROM requests GROUP BY email),
        {_WINDOWS.strip()},
        peaks AS (
            SELECT w.email, w.rule, w.limit_usd, w.days, max(w.refused) > 0 AS hit,
                   max(w.spend + w.refused * a.c)::DOUBLE AS demand
            FROM windows w JOIN avg_cost a USING (email) GROUP BY ALL),
        s AS (
            SELECT rule, any_value(limit_usd)::DOUBLE AS limit_usd, any_value(days) AS days,
                   count(*) AS users, avg(hit::INTEGER) AS share_hit,
                   quantile_cont(demand, 0.5) AS median_demand,
                   quantile_cont(demand, 0.95) AS p95_demand, max(demand) AS max_demand
            FROM peaks WHERE rule IS NOT NULL GROUP BY rule),
        n AS (  -- raise to the p95 demand; lower to twice it (headroom); two significant digits
            SELECT *, CASE WHEN share_hit >= 0.05 THEN p95_demand ELSE 2 * p95_demand END AS x,
                   CASE WHEN x > 0 THEN ceil(x / pow(10, floor(log10(x)) - 1))
                        * pow(10, floor(log10(x)) - 1) ELSE 0 END AS nice
            FROM s)
        SELECT rule, limit_usd, days, users, share_hit, median_demand, p95_demand, max_demand,
               CASE WHEN limit_usd = 0 THEN 'keep (blocked)'
                    WHEN share_hit >= 0.05 AND nice > limit_usd THEN 'raise'
                    WHEN share_hit = 0 AND nice < limit_usd / 2 THEN 'lower'
                    ELSE 'keep' END AS action,
               CASE WHEN action IN ('raise', 'lower') THEN nice ELSE limit_usd END
                   AS suggested_limit
        FROM n ORDER BY users DESC""")
