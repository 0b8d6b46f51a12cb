"""GET /metrics: Prometheus text (or OpenMetrics, when asked), aggregates only.

Built at scrape time from what the relay already keeps — the edge's `Meter` (relay/metrics.py),
the budgets' reservations, the store's buffers, the policy in force — by a prometheus_client
collector on the app's own registry (no module-level metric objects: two apps in one process,
as in tests, never share counts). With `AIPIPE_METRICS_TOKEN` set, a scrape needs
`Authorization: Bearer <that token>`.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, ProcessCollector
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    InfoMetricFamily,
    Metric,
)
from prometheus_client.exposition import choose_encoder
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from relay import __version__
from relay.errors import Unauthorized


class RelayCollector:
    """Reads the app's state at each scrape; holds no numbers of its own."""

    def __init__(self, state: Any):
        self.state = state

    def collect(self) -> Iterator[Metric]:
        state = self.state
        meter = state.meter
        yield InfoMetricFamily("aipipe_build", "The relay's version.", value={"version": __version__})
        yield GaugeMetricFamily(
            "aipipe_start_time_seconds", "When this relay process started (Unix time).", value=meter.started
        )

        responses = CounterMetricFamily(
            "aipipe_http_responses", "Every HTTP answer the relay gave, by status.", labels=["status"]
        )
        for status, count in sorted(meter.responses.items()):
            responses.add_metric([str(status)], count)
        yield responses

        calls = CounterMetricFamily(
            "aipipe_requests",
            "Provider calls recorded in the ledger, by provider, outcome and (ledger) status.",
            labels=["provider", "outcome", "status"],
        )
        for (provider, outcome, status), count in sorted(meter.calls.items()):
            calls.add_metric([provider, outcome, str(status)], count)
        yield calls

        cost = CounterMetricFamily(
            "aipipe_cost_usd", "USD recorded for provider calls, by provider and cost source.",
            labels=["provider", "source"],
        )
        for (provider, source), amount in sorted(meter.cost.items()):
            cost.add_metric([provider, source], float(amount))
        yield cost

        for name, table, what in (
            ("aipipe_upstream_latency_seconds", meter.latency,
             "Provider calls, from the relay reading the request to the call recorded "
             "(streams: to their end)."),
            ("aipipe_upstream_ttfb_seconds", meter.ttfb,
             "From sending a call upstream to the provider's response headers."),
        ):
            family = HistogramMetricFamily(name, what, labels=["provider"])
            for provider, hist in sorted(table.items()):
                family.add_metric([provider], hist.cumulative(), hist.sum)
            yield family

        budgets = state.budgets
        yield GaugeMetricFamily(
            "aipipe_reservations_open", "Admitted calls holding a budget reservation now.",
            value=budgets.open_reservations(),
        )
        yield GaugeMetricFamily(
            "aipipe_reserved_usd", "USD held by open reservations.", value=float(budgets.reserved())
        )
        yield GaugeMetricFamily(
            "aipipe_requests_in_flight", "HTTP requests in progress.", value=state.inflight.count
        )

        store = state.store
        pending = store.pending()
        yield GaugeMetricFamily(
            "aipipe_ledger_rows_pending", "Ledger rows recorded but not yet written.", value=pending
        )
        yield CounterMetricFamily(
            "aipipe_ledger_rows_written", "Ledger rows written to the database.", value=store.rows_written
        )
        last = store.last_flush_at
        lag = 0.0 if not pending else time.time() - (last if last is not None else meter.started)
        yield GaugeMetricFamily(
            "aipipe_store_lag_seconds",
            "With rows pending: seconds since the last write that succeeded (0 when none pending).",
            value=max(lag, 0.0),
        )
        yield GaugeMetricFamily(
            "aipipe_store_healthy", "1 when the last write to the database succeeded.",
            value=0 if store.last_flush_error else 1,
        )

        policy = state.policy
        yield InfoMetricFamily(
            "aipipe_policy", "The policy file in force (compare digests across replicas).",
            value={"digest": policy.loaded.digest},
        )
        yield GaugeMetricFamily(
            "aipipe_policy_loaded_time_seconds", "When the policy in force was loaded (Unix time).",
            value=policy.loaded.loaded_at.timestamp(),
        )
        yield GaugeMetricFamily(
            "aipipe_policy_reload_failed", "1 when the last reload failed (the previous policy kept).",
            value=1 if policy.last_error else 0,
        )


def registry_for(state: Any) -> CollectorRegistry:
    """The app's registry: the relay's collector plus the standard process metrics
    (process_start_time_seconds, CPU, memory, open files)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(RelayCollector(state))  # type: ignore[arg-type]
    ProcessCollector(registry=registry)
    return registry


async def metrics(request: Request) -> Response:
    state = request.app.state
    expected = state.settings.metrics_token
    if expected is not None:
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), expected.encode()):
            raise Unauthorized(
                "/metrics needs Authorization: Bearer <AIPIPE_METRICS_TOKEN>",
                code="invalid_metrics_token",
                headers={"www-authenticate": "Bearer"},
            )
    encoder, content_type = choose_encoder(request.headers.get("accept"))
    return Response(encoder(state.metrics_registry), headers={"content-type": content_type})


routes = [Route("/metrics", metrics, methods=["GET"])]
