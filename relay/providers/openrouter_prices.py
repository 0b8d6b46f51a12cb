"""OpenRouter model prices from its `/v1/models` list, cached with a time limit.

They bound a call before it is forwarded (its reservation and output cap) and price it when the
answer carries no `usage.cost`. The list is fetched at most once per TTL per base URL; concurrent
callers share one fetch (single flight). A failed fetch never raises to the request: the last
good list (if any) keeps serving, and the fetch is retried after a short back-off rather than
cached forever.

A call is priced at its model's listed price. Anything the list does not price exactly — a
variant (`:nitro`, `:online`, …) that may route to dearer providers, a router such as
`openrouter/auto` (listed as variable), an id missing from the list — is bounded by the
dearest prices in the list, so its worst case is never under-reserved; a `models` fallback list
is priced at the dearest of the models it names; web search (`:online`, the `web` plugin) adds
its per-result price to each call.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
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
# OpenRouter's web search: $4 per 1,000 results, 5 results unless the `web` plugin says more.
WEB_RESULT_PRICE = Decimal("0.004")
WEB_RESULTS_DEFAULT = 5
_BOUND_FIELDS = ("input", "output", "cached_input", "cache_write", "per_request", "max_output")


@dataclass(slots=True)
class _Table:
    prices: dict[str, Price]
    fetched_at: float
    dearest: Price | None = None  # the bound for anything the list does not price exactly

    def lookup(self, model: str) -> Price | None:
        return self.prices.get(model) or self.prices.get(model.lower()) or self.dearest


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

    async def price(
        self, client: httpx.AsyncClient, base_url: str, model: str, body: Any = None
    ) -> Price | None:
        """The price that bounds a call to `model` (e.g. "openai/gpt-4o-mini") with this
        request `body`: the listed price, else the list's dearest (see the module's note).
        None only when the list cannot be fetched (or prices nothing). Never raises for
        network or format problems."""
        table = await self._table(client, base_url.rstrip("/"))
        if table is None:
            return None
        names, web_results = routing(model, body)
        prices = [table.lookup(name) for name in names]
        if any(p is None for p in prices):
            return None
        price = dearest(p for p in prices if p is not None) if len(prices) > 1 else prices[0]
        if price is not None and web_results:
            extra = WEB_RESULT_PRICE * web_results
            price = replace(price, per_request=(price.per_request or Decimal(0)) + extra,
                            note=f"{price.note}; web search ${extra} a call".lstrip("; "))
        return price

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
        bound = dearest(prices.values()) if prices else None
        if bound is not None:
            bound = replace(bound, note="not priced exactly by the list: its dearest prices")
        table = _Table(prices, self._clock(), bound)
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
        price = Price(**values, source=source, date=today, max_output=_max_output(item))
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


def routing(model: str, body: Any) -> tuple[list[str], int]:
    """The models a request may run on (its `model`, then any `models` fallbacks) and how many
    web-search results it may pay for (`:online`, or a `web` plugin's `max_results`)."""
    names = [model]
    web = WEB_RESULTS_DEFAULT if model.endswith(":online") else 0
    if isinstance(body, dict):
        fallbacks = body.get("models")
        if isinstance(fallbacks, list):
            names += [m for m in fallbacks if isinstance(m, str) and m]
        plugins = body.get("plugins")
        for plugin in plugins if isinstance(plugins, list) else []:
            if isinstance(plugin, dict) and plugin.get("id") == "web":
                asked = plugin.get("max_results")
                ok = isinstance(asked, int) and not isinstance(asked, bool) and asked > 0
                web = max(web, asked if ok else WEB_RESULTS_DEFAULT)  # type: ignore[type-var]
    return names, web


def dearest(prices: Iterable[Price]) -> Price | None:
    """A price no dearer model in `prices` exceeds: each field's largest value."""
    prices = list(prices)
    if not prices:
        return None
    values: dict[str, Any] = {}
    for name in _BOUND_FIELDS:
        present = [getattr(p, name) for p in prices if getattr(p, name) is not None]
        if present:
            values[name] = max(present)
    return Price(**values, source=prices[0].source, date=prices[0].date)


def _max_output(item: dict[str, Any]) -> int | None:
    """A model's largest reply: its top provider's completion limit, else its context length
    (a reply cannot be longer than the context)."""
    top = item.get("top_provider")
    for value in ((top or {}).get("max_completion_tokens") if isinstance(top, dict) else None,
                  item.get("context_length")):
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None
