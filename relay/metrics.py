"""What `/metrics` counts, kept as plain numbers so the hot path pays a few dict operations.

The edge feeds `Meter.request()` once per request with that request's log entry — the fields the
proxy logged (provider, outcome, status, cost, source, latency, time to first byte) — so the
metrics are the aggregates of the access log: one source of truth, and nothing here runs inside
the forwarding code. Labels are bounded sets only (providers, outcomes, HTTP statuses, cost
sources): never an email, a token, a model name or a path a client chose.

The exposition (Prometheus text, via prometheus_client) is built from these at scrape time, in
relay/routes/metrics.py.
"""

from __future__ import annotations

import time
from bisect import bisect_left
from decimal import Decimal, InvalidOperation
from typing import Any

# Seconds. Upstream LLM calls run from ~50 ms (a cached embedding) to minutes (a long stream).
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
TTFB_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
MAX_STATUS_LABELS = 64  # statuses are the relay's and providers' — bounded, but keep it certain


class Histogram:
    """Counts per bucket (not cumulative: that is done at scrape time) and a sum."""

    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: tuple[float, ...]):
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # the last one is +Inf
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.sum += value

    def cumulative(self) -> list[tuple[str, int]]:
        out, total = [], 0
        for bound, count in zip((*map(str, self.bounds), "+Inf"), self.counts, strict=True):
            total += count
            out.append((bound, total))
        return out


class Meter:
    def __init__(self) -> None:
        self.started = time.time()
        self.responses: dict[int, int] = {}  # every HTTP answer of the edge, by status
        self.calls: dict[tuple[str, str, int], int] = {}  # recorded calls: provider, outcome, status
        self.cost: dict[tuple[str, str], Decimal] = {}  # provider, cost source -> USD
        self.latency: dict[str, Histogram] = {}  # provider -> seconds, call start to recorded
        # (only calls that reached the provider: refusals and connection failures have no TTFB)
        self.ttfb: dict[str, Histogram] = {}  # provider -> seconds, sent to response headers

    def request(self, fields: dict[str, Any], status: int) -> None:
        """One finished request: its HTTP status and its log entry's fields."""
        responses = self.responses
        if status in responses:
            responses[status] += 1
        elif len(responses) < MAX_STATUS_LABELS:
            responses[status] = 1
        provider = fields.get("provider")
        if provider is None:
            return
        ttfb = fields.get("ttfb_ms")
        if ttfb is not None:
            hist = self.ttfb.get(provider) or _histogram(self.ttfb, provider, TTFB_BUCKETS)
            hist.observe(ttfb / 1000)
        outcome = fields.get("outcome")
        if outcome is None:  # reached a provider route but was never recorded (e.g. a 401)
            return
        key = (provider, outcome, fields.get("status", status))
        self.calls[key] = self.calls.get(key, 0) + 1
        cost = fields.get("cost")
        if cost and cost != "0":
            try:
                amount = Decimal(cost)
            except InvalidOperation:
                amount = None
            if amount is not None:
                where = (provider, fields.get("source", ""))
                self.cost[where] = self.cost.get(where, Decimal(0)) + amount
        latency = fields.get("latency_ms")
        if latency is not None and ttfb is not None:  # only calls the provider answered
            hist = self.latency.get(provider) or _histogram(self.latency, provider, LATENCY_BUCKETS)
            hist.observe(latency / 1000)


def _histogram(table: dict[str, Histogram], key: str, bounds: tuple[float, ...]) -> Histogram:
    """A provider's first observation: its histogram."""
    found = table[key] = Histogram(bounds)
    return found
