"""OpenRouter's model prices: fetched from a fake `/v1/models`, cached, shared, never raising."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

import httpx
import pytest

from relay.providers.openrouter_prices import OpenRouterPrices, parse_models

BASE = "http://127.0.0.1:9/api"  # never dialled: the transport answers in-process

# Shape of https://openrouter.ai/docs/api-reference/list-available-models (prices are USD per
# token, as strings; "-1" marks a variable-priced router).
MODELS = {
    "data": [
        {
            "id": "openai/gpt-4o-mini",
            "canonical_slug": "openai/gpt-4o-mini",
            "name": "OpenAI: GPT-4o-mini",
            "context_length": 128000,
            "pricing": {
                "prompt": "0.00000015", "completion": "0.0000006", "request": "0",
                "image": "0.000217", "web_search": "0", "internal_reasoning": "0",
                "input_cache_read": "0.000000075",
            },
        },
        {
            "id": "anthropic/claude-sonnet-4",
            "pricing": {"prompt": "0.000003", "completion": "0.000015",
                        "input_cache_read": "0.0000003", "input_cache_write": "0.00000375",
                        "request": "0.001"},
        },
        {"id": "openrouter/auto", "pricing": {"prompt": "-1", "completion": "-1"}},
        {"id": "broken/no-pricing"},
        "not a model",
    ]
}


class FakeOpenRouter:
    """A fake `/v1/models` endpoint that counts fetches and can fail or stall on demand."""

    def __init__(self) -> None:
        self.fetches = 0
        self.mode = "ok"  # ok | 500 | down | garbage
        self.gate: asyncio.Event | None = None

    async def handle(self, request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/api/v1/models"
        self.fetches += 1
        if self.gate is not None:
            await self.gate.wait()
        if self.mode == "down":
            raise httpx.ConnectError("connection refused", request=request)
        if self.mode == "500":
            return httpx.Response(500, json={"error": {"message": "boom"}})
        if self.mode == "garbage":
            return httpx.Response(200, content=b"<html>not json</html>")
        return httpx.Response(200, json=MODELS)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _run(fake: FakeOpenRouter, body: Callable[[httpx.AsyncClient], Awaitable[Any]]) -> Any:
    async def main() -> Any:
        async with httpx.AsyncClient(transport=httpx.MockTransport(fake.handle)) as client:
            return await body(client)

    return asyncio.run(main())


def test_prices_are_converted_to_exact_per_million_decimals() -> None:
    """Per-token strings become exact USD-per-1M Decimals, cache and request prices included."""
    fake = FakeOpenRouter()
    prices = OpenRouterPrices()
    mini = _run(fake, lambda c: prices.price(c, BASE, "openai/gpt-4o-mini"))
    assert (mini.input, mini.output, mini.cached_input) == (
        Decimal("0.15"), Decimal("0.6"), Decimal("0.075"),
    )
    assert mini.per_request is None and mini.source == f"{BASE}/v1/models" and mini.date
    sonnet = _run(fake, lambda c: prices.price(c, BASE + "/", "anthropic/claude-sonnet-4"))
    assert sonnet.cache_write == Decimal("3.75") and sonnet.per_request == Decimal("0.001")


def test_unknown_and_variable_priced_models_get_the_dearest_prices() -> None:
    """A model missing from the list, priced "-1" (openrouter/auto) or a variant (`:nitro`)
    is bounded by the list's dearest price of each kind, and its largest reply."""
    fake = FakeOpenRouter()
    prices = OpenRouterPrices()

    async def body(client: httpx.AsyncClient) -> list[Any]:
        return [await prices.price(client, BASE, m) for m in (
            "openrouter/auto", "nobody/nothing", "broken/no-pricing", "openai/gpt-4o-mini:nitro")]

    bounds = _run(fake, body)
    assert len(set(bounds)) == 1
    bound = bounds[0]
    assert (bound.input, bound.output, bound.cached_input, bound.cache_write, bound.per_request) == (
        Decimal("3"), Decimal("15"), Decimal("0.3"), Decimal("3.75"), Decimal("0.001"))
    assert bound.max_output == 128000  # gpt-4o-mini's context length; sonnet names none
    assert fake.fetches == 1  # an unknown model does not trigger a refetch


def test_web_search_and_fallbacks_raise_the_bound() -> None:
    """`:online` or the `web` plugin add $0.004 per result (5 unless `max_results` says); a
    `models` fallback list is priced at the dearest model it names."""
    fake = FakeOpenRouter()
    prices = OpenRouterPrices()
    mini = "openai/gpt-4o-mini"

    async def body(client: httpx.AsyncClient) -> list[Any]:
        return [
            await prices.price(client, BASE, mini, {"plugins": [{"id": "web"}]}),
            await prices.price(client, BASE, mini, {"plugins": [{"id": "web", "max_results": 20}]}),
            await prices.price(client, BASE, mini, {"models": [mini, "anthropic/claude-sonnet-4"]}),
            await prices.price(client, BASE, mini, {"models": "not a list", "plugins": [{}]}),
        ]

    web5, web20, fallback, plain = _run(fake, body)
    assert web5.per_request == Decimal("0.020") and web5.output == Decimal("0.6")
    assert web20.per_request == Decimal("0.080")
    assert (fallback.input, fallback.output) == (Decimal("3"), Decimal("15"))
    assert plain.per_request is None and plain.output == Decimal("0.6")


def test_list_is_fetched_once_per_ttl() -> None:
    """Repeated lookups reuse the list until the TTL passes, then fetch it again."""
    fake, clock = FakeOpenRouter(), Clock()
    prices = OpenRouterPrices(ttl_seconds=3600, clock=clock)

    async def body(client: httpx.AsyncClient) -> None:
        for _ in range(5):
            assert await prices.price(client, BASE, "openai/gpt-4o-mini") is not None
        assert fake.fetches == 1
        clock.now += 3599
        await prices.price(client, BASE, "openai/gpt-4o-mini")
        assert fake.fetches == 1
        clock.now += 2
        await prices.price(client, BASE, "openai/gpt-4o-mini")
        assert fake.fetches == 2

    _run(fake, body)


def test_concurrent_callers_share_one_fetch() -> None:
    """Fifty requests arriving while the list is being fetched wait for that one fetch."""
    fake = FakeOpenRouter()
    prices = OpenRouterPrices()

    async def body(client: httpx.AsyncClient) -> list[Any]:
        fake.gate = asyncio.Event()
        tasks = [asyncio.create_task(prices.price(client, BASE, "openai/gpt-4o-mini"))
                 for _ in range(50)]
        await asyncio.sleep(0.01)
        fake.gate.set()
        return await asyncio.gather(*tasks)

    results = _run(fake, body)
    assert fake.fetches == 1
    assert all(r is not None and r.input == Decimal("0.15") for r in results)


def test_a_cancelled_caller_does_not_cancel_the_shared_fetch() -> None:
    """A client that goes away mid-fetch leaves the fetch running for everyone else."""
    fake = FakeOpenRouter()
    prices = OpenRouterPrices()

    async def body(client: httpx.AsyncClient) -> Any:
        fake.gate = asyncio.Event()
        first = asyncio.create_task(prices.price(client, BASE, "openai/gpt-4o-mini"))
        second = asyncio.create_task(prices.price(client, BASE, "openai/gpt-4o-mini"))
        await asyncio.sleep(0.01)
        first.cancel()
        fake.gate.set()
        with pytest.raises(asyncio.CancelledError):
            await first
        return await second

    assert _run(fake, body) is not None
    assert fake.fetches == 1


@pytest.mark.parametrize("mode", ["500", "down", "garbage"])
def test_failed_fetch_returns_none_and_is_retried_later(mode: str) -> None:
    """A failing list never raises; it is retried after the back-off, not cached forever."""
    fake, clock = FakeOpenRouter(), Clock()
    fake.mode = mode
    prices = OpenRouterPrices(retry_seconds=30, clock=clock)

    async def body(client: httpx.AsyncClient) -> None:
        assert await prices.price(client, BASE, "openai/gpt-4o-mini") is None
        assert await prices.price(client, BASE, "openai/gpt-4o-mini") is None
        assert fake.fetches == 1  # backing off: no fetch per request while it is down
        fake.mode = "ok"
        clock.now += 31
        assert await prices.price(client, BASE, "openai/gpt-4o-mini") is not None
        assert fake.fetches == 2

    _run(fake, body)


def test_stale_list_keeps_serving_when_a_refresh_fails() -> None:
    """After the TTL, a failed refresh falls back to the last good list."""
    fake, clock = FakeOpenRouter(), Clock()
    prices = OpenRouterPrices(ttl_seconds=60, retry_seconds=30, clock=clock)

    async def body(client: httpx.AsyncClient) -> None:
        assert await prices.price(client, BASE, "openai/gpt-4o-mini") is not None
        clock.now += 61
        fake.mode = "down"
        assert await prices.price(client, BASE, "openai/gpt-4o-mini") is not None
        assert fake.fetches == 2

    _run(fake, body)


def test_parse_models_rejects_a_body_without_data() -> None:
    """A response that is not a model list is an error (caught by the fetcher, not the caller)."""
    with pytest.raises(ValueError):
        parse_models({"models": []}, source="x")
    assert parse_models({"data": []}, source="x") == {}
