"""OpenRouter model prices from its `/v1/models` list, cached with a time limit.

Used only when an OpenRouter answer carries no `usage.cost`. The list is fetched at most once
per TTL per base URL; concurrent callers share one fetch (single flight). A failed fetch never
raises to the request: the last good list (if any) keeps serving, and the fetch is retried
after a short back-off rather than cached forever.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

import httpx

from relay.costing.pricing import Price

log = logging.getLogger(__name__)

MILLION = Decimal(1_000_000)
# OpenRouter `pricing` keys (USD per token, as strings) → Price fields (USD per 1M tokens).
_PER_TOKEN = {
    "prompt": "input",
    "completion": "output",
    "input_cache_read": "cached_input",
    "input_cache_write": "cache_write",
    "internal_reasoning": None,  # reasoning is billed inside completion tokens
}


@dataclass(slots=True)
class _Table:
    prices: dict[str, Price]
    fetched_at: float


class OpenRouterPrices:
    """Per-model prices from OpenRouter's model list, refreshed every `ttl_seconds`."""

    def __init__(
        self,
        ttl_seconds: float = 3600,
        *,
        retry_seconds: float = 30,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl_seconds = ttl_seconds
        self.retry_seconds = min(retry_seconds, ttl_seconds)
        self._clock = clock
        self._tables: dict[str, _Table] = {}
        self._failed_at: dict[str, float] = {}
        self._inflight: dict[str, asyncio.Future[_Table | None]] = {}

    async def price(self, client: httpx.AsyncClient, base_url: str, model: str) -> Price | None:
        """The price of `model` (e.g. "openai/gpt-4o-mini"), or None when unknown or the list
        cannot be fetched. Never raises for network or format problems."""
        table = await self._table(client, base_url.rstrip("/"))
        if table is None:
            return None
        return table.prices.get(model) or table.prices.get(model.lower())

    async def _table(self, client: httpx.AsyncClient, base: str) -> _Table | None:
        now = self._clock()
        table = self._tables.get(base)
        if table is not None and now - table.fetched_at < self.ttl_seconds:
            return table
        failed = self._failed_at.get(base)
        if failed is not None and now - failed < self.retry_seconds:
            return table  # back off after a failure; serve the stale list if there is one
        future = self._inflight.get(base)
        if future is None:
            future = asyncio.ensure_future(self._fetch(client, base))
            self._inflight[base] = future
            future.add_done_callback(lambda _: self._inflight.pop(base, None))
        # shield: one caller giving up (client gone) must not cancel the shared fetch
        fresh = await asyncio.shield(future)
        return fresh if fresh is not None else table

    async def _fetch(self, client: httpx.AsyncClient, base: str) -> _Table | None:
        url = f"{base}/v1/models"
        try:
            response = await client.get(url, headers={"accept": "application/json"})
            response.raise_for_status()
            prices = parse_models(response.json(), source=url)
        except (httpx.HTTPError, ValueError) as e:  # network, status, bad JSON or shape
            log.warning("OpenRouter price list %s unavailable: %s", url, e)
            self._failed_at[base] = self._clock()
            return None
        table = _Table(prices, self._clock())
        self._tables[base] = table
        self._failed_at.pop(base, None)
        return table


def parse_models(body: Any, *, source: str) -> dict[str, Price]:
    """`{"data": [{"id", "pricing": {"prompt": "0.0000025", ...}}]}` → prices per 1M tokens.

    Models with a variable price (OpenRouter's "-1", e.g. `openrouter/auto`) are left out."""
    if not isinstance(body, dict) or not isinstance(body.get("data"), list):
        raise ValueError("expected {'data': [...]} from /v1/models")
    today = dt.datetime.now(dt.UTC).date().isoformat()
    out: dict[str, Price] = {}
    for item in body["data"]:
        if not isinstance(item, dict) or not isinstance(item.get("id"), str):
            continue
        pricing = item.get("pricing")
        if not isinstance(pricing, dict):
            continue
        values: dict[str, Decimal] = {}
        variable = False
        for key, field in _PER_TOKEN.items():
            amount = _per_token(pricing.get(key))
            if amount is None:
                continue
            if amount < 0:
                variable = True
            elif field is not None:
                values[field] = amount * MILLION
        request = _per_token(pricing.get("request"))
        if request is not None and request > 0:
            values["per_request"] = request
        if variable or "input" not in values or "output" not in values:
            continue
        price = Price(**values, source=source, date=today)
        out[item["id"]] = price
        out.setdefault(item["id"].lower(), price)
    return out


def _per_token(value: Any) -> Decimal | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        amount = Decimal(value if isinstance(value, str | int | Decimal) else repr(value))
    except InvalidOperation:
        return None
    return amount if amount.is_finite() else None
