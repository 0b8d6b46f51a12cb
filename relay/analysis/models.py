"""Models and cost provenance: price per token, where each cost came from, cut streams.

Each question is one function returning a pandas DataFrame. Sums run in DuckDB as DECIMAL; results
are cast to DOUBLE only at the end, for tables and charts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from relay.analysis.source import df as _df

if TYPE_CHECKING:
    import duckdb
    import pandas as pd


def model_costs(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Per model (requests that reached the provider): tokens, spend, USD per 1k tokens (input
    and output together), per request, cached-input share and latency."""
    return _df(con, """
        SELECT provider, model, count(*) AS requests,
               sum(input_tokens) AS input_tokens, sum(output_tokens) AS output_tokens,
               sum(cost)::DOUBLE AS cost_usd,
               (1000 * sum(cost) / nullif(sum(input_tokens + output_tokens), 0))::DOUBLE
                   AS usd_per_1k_tokens,
               (sum(cost) / count(*))::DOUBLE AS usd_per_request,
               (sum(cached_tokens) / nullif(sum(input_tokens), 0))::DOUBLE AS cached_share,
               (sum(reasoning_tokens) / nullif(sum(output_tokens), 0))::DOUBLE
                   AS reasoning_share,
               quantile_cont(latency_ms, 0.5) FILTER (WHERE outcome = 'ok') AS p50_latency_ms,
               quantile_cont(latency_ms, 0.95) FILTER (WHERE outcome = 'ok') AS p95_latency_ms
        FROM requests WHERE model <> '' AND outcome <> 'refused'
        GROUP BY ALL ORDER BY cost_usd DESC""")


def cost_sources(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Provider × cost source (reported, computed, estimated, free): requests and spend, with
    each source's share of the provider's spend."""
    return _df(con, """
        SELECT provider, cost_source, count(*) AS requests, sum(cost)::DOUBLE AS cost_usd,
               coalesce((sum(cost) / nullif(sum(sum(cost)) OVER (PARTITION BY provider), 0))
                        ::DOUBLE, 0) AS share_of_provider
        FROM requests GROUP BY provider, cost_source ORDER BY provider, cost_usd DESC""")


def cost_sources_by_day(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Date × cost source: spend, so a day when usage stopped being reported stands out."""
    return _df(con, """
        SELECT date, cost_source, count(*) AS requests, sum(cost)::DOUBLE AS cost_usd
        FROM requests WHERE cost_source <> 'free' GROUP BY ALL ORDER BY date, cost_source""")


def stream_outcomes(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Per model, streamed requests only: how many were aborted (client left) or broken
    (upstream failed mid-way), what they cost, and how much of that cost was estimated."""
    return _df(con, """
        SELECT provider, model, count(*) AS streams,
               count(*) FILTER (WHERE outcome = 'aborted') AS aborted,
               count(*) FILTER (WHERE outcome = 'broken') AS broken,
               avg((outcome IN ('aborted', 'broken'))::INTEGER) AS cut_share,
               (sum(cost) FILTER (WHERE outcome IN ('aborted', 'broken')))::DOUBLE AS cut_cost_usd,
               coalesce((sum(cost) FILTER (WHERE outcome IN ('aborted', 'broken')
                         AND cost_source = 'estimated')
                   / nullif(sum(cost) FILTER (WHERE outcome IN ('aborted', 'broken')), 0))
                   ::DOUBLE, 0) AS cut_estimated_share
        FROM requests WHERE streamed AND outcome <> 'refused'
        GROUP BY ALL ORDER BY streams DESC""")


def outcomes_by_provider(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Per provider: requests by outcome (ok, error, aborted, broken, refused)."""
    return _df(con, """
        SELECT provider, count(*) AS requests,
               count(*) FILTER (WHERE outcome = 'ok') AS ok,
               count(*) FILTER (WHERE outcome = 'error') AS error,
               count(*) FILTER (WHERE outcome = 'aborted') AS aborted,
               count(*) FILTER (WHERE outcome = 'broken') AS broken,
               count(*) FILTER (WHERE outcome = 'refused') AS refused
        FROM requests GROUP BY ALL ORDER BY requests DESC""")
