"""The worst-case rule, by property: for any request body (any output limits in any spelling,
any number of replies, any prompt) and any budget with any amount already reserved, an admitted
call's cap as the provider will read it from the body sent upstream, times the output price and
the number of replies, plus the input estimate, is at most what was left at admission — and the
reservation covers it. Admission is driven for real: `describe` reads the request, `admit`
reserves against a real `Budgets` over a real DuckDB store."""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from starlette.requests import Request

from relay.costing.budget import Budgets
from relay.costing.pricing import Price, PriceTable
from relay.errors import BadRequest, QuotaExceeded
from relay.forward.admission import admit
from relay.forward.call import describe
from relay.policy import parse_policy
from relay.providers.openrouter_prices import dearest, parse_models
from relay.providers.registry import PROVIDERS, classify
from relay.store import Store

PRICES = PriceTable.load()
MILLION = Decimal(1_000_000)
EMAIL = "prop@example.org"
OPENROUTER_LIST = parse_models({"data": [
    {"id": "cheap/model", "context_length": 32768,
     "pricing": {"prompt": "0.0000001", "completion": "0.0000004"}},
    {"id": "dear/model", "top_provider": {"max_completion_tokens": 8192},
     "pricing": {"prompt": "0.000015", "completion": "0.00006", "request": "0.002"}},
]}, source="test")
BOUND = dearest(OPENROUTER_LIST.values())
# (route, path, models): a token-writing endpoint per provider, with models of varied prices,
# output maximums and tiers (gemini-2.5-pro is dearer above 200k prompt tokens).
ENDPOINTS = [
    ("openai", "/v1/chat/completions", ["gpt-4o-mini", "o3", "gpt-5-pro", "gpt-4o-2024-05-13",
                                        "gpt-4o-audio-preview"]),
    ("openai", "/v1/responses", ["o4-mini", "gpt-4.1-nano"]),
    ("openrouter", "/v1/chat/completions", ["cheap/model", "dear/model", "unlisted/x:nitro"]),
    ("geminiv1beta", "/models/{m}:generateContent", ["gemini-2.5-pro", "gemini-2.0-flash"]),
    ("geminiv1beta", "/models/{m}:streamGenerateContent", ["gemini-2.5-flash"]),
]
# A budget limit in hundred-millionths of a dollar, $0.00001 .. $10, every magnitude alike.
LIMIT = st.integers(3, 8).flatmap(lambda e: st.integers(10**e, 10 ** (e + 1)))
_VALID_MAX = st.none() | st.integers(1, 300) | st.integers(1, 10**7)
MAXIMUM = st.one_of(_VALID_MAX, _VALID_MAX, _VALID_MAX, st.sampled_from([0, -1, True, "9", 2**63]))
_VALID_N = st.none() | st.integers(1, 8) | st.integers(1, 128)
REPLIES = st.one_of(_VALID_N, _VALID_N, _VALID_N, st.sampled_from([0, 129, True]))
PROMPT = st.sampled_from([0, 1, 7, 40, 400, 4000, 30_000, 900_000]).flatmap(
    lambda n: st.sampled_from(["a" * n, "語" * n, ("word " * n)[:n]]))


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    path: Path = tmp_path_factory.mktemp("prop") / "u.duckdb"
    opened = Store(path).open(background=False)
    yield opened
    opened.close()


@st.composite
def requests(draw: st.DrawFn) -> tuple[str, str, dict[str, Any]]:
    route, path, models = draw(st.sampled_from(ENDPOINTS))
    model = draw(st.sampled_from(models))
    prompt = draw(PROMPT)
    limits = {name: draw(MAXIMUM) for name in draw(st.lists(st.sampled_from(
        ["max_tokens", "max_completion_tokens", "max_output_tokens", "maxOutputTokens"]),
        unique=True, max_size=3))}
    replies = {name: draw(REPLIES) for name in draw(st.lists(st.sampled_from(
        ["n", "best_of", "candidateCount", "candidate_count"]), unique=True, max_size=2))}
    extras = {k: v for k, v in {**limits, **replies}.items() if v is not None}
    if route == "geminiv1beta":
        section = draw(st.sampled_from(["generationConfig", "generation_config"]))
        body: dict[str, Any] = {"contents": [{"parts": [{"text": prompt}]}]}
        if extras or draw(st.booleans()):
            body[section] = extras
        return route, path.format(m=model), body
    if path == "/v1/responses":
        return route, path, {"model": model, "input": prompt, **extras}
    return route, path, {"model": model, "messages": [{"role": "user", "content": prompt}],
                         **extras}


def price_of(route: str, model: str) -> Price:
    if route == "openrouter":
        found = OPENROUTER_LIST.get(model, BOUND)
        assert found is not None
        return found
    found = PRICES.lookup(PROVIDERS[route].name, model)
    assert found is not None
    return found


def as_the_provider_reads(route: str, path: str, body: dict[str, Any]) -> tuple[int | None, int]:
    """(output maximum, replies) as the provider reads the body it receives: the largest of the
    spellings it accepts, in the object it reads them from."""
    if route == "geminiv1beta":
        holder = body.get("generationConfig") or body.get("generation_config") or {}
        caps, counts = ("maxOutputTokens", "max_output_tokens"), ("candidateCount", "candidate_count")
    elif path == "/v1/responses":  # the Responses API knows only max_output_tokens
        holder, caps, counts = body, ("max_output_tokens",), ()
    else:
        holder = body
        caps, counts = ("max_tokens", "max_completion_tokens", "max_output_tokens"), ("n", "best_of")
    present = [holder[f] for f in caps if f in holder]
    return (max(present) if present else None), max([holder[f] for f in counts if f in holder],
                                                    default=1)


def worst_case(price: Price, input_tokens: int, cap: int, replies: int) -> Decimal:
    """The input estimate at the dearest input price of the prompt's tier, plus every reply's
    cap at the dearest output price, plus any per-call price."""
    tier = price.for_prompt(input_tokens)
    dearest_in = max((r for r in (tier.input, tier.audio_input, tier.image_input, tier.cache_write)
                      if r is not None), default=Decimal(0))
    dearest_out = max((r for r in (tier.output, tier.audio_output, tier.image_output)
                       if r is not None), default=Decimal(0))
    return ((input_tokens * dearest_in + cap * replies * dearest_out) / MILLION
            + (tier.per_request or Decimal(0)))


def scope_for(route: str, path: str) -> Request:
    return Request({"type": "http", "method": "POST", "path": f"/{route}{path}",
                    "headers": [(b"content-type", b"application/json")], "query_string": b""})


@settings(max_examples=500, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(request=requests(), limit=LIMIT, held=st.lists(st.integers(0, 100), max_size=3))
def test_an_admitted_calls_worst_case_fits_what_was_left(store, request, limit, held) -> None:
    """cap sent × output price × replies + input estimate ≤ the budget left at admission
    (limit − spend − other reservations), and the reservation holds at least that much."""
    route, path, body = request
    budgets = Budgets(parse_policy({"budget": {EMAIL: {"limit": limit / 10**8, "days": 1}}}), store)
    others = []
    for percent in held:  # calls already in flight, each holding a share of the limit
        try:
            others.append(asyncio.run(budgets.admit(EMAIL, Decimal(limit * percent) / 10**10)))
        except QuotaExceeded:
            break
    provider = PROVIDERS[route]
    raw = json.dumps(body).encode()
    try:
        call = describe(scope_for(route, path), provider, classify(provider, "POST", path), path,
                        raw, EMAIL)
        price = price_of(route, call.model)
        reservation = asyncio.run(admit(budgets, call, price))
    except (BadRequest, QuotaExceeded) as refused:
        event(f"refused {refused.status}")
        return  # refused before the provider: nothing can be spent
    try:
        cap, replies = as_the_provider_reads(route, path, json.loads(call.body))
        assert cap is not None, "a call that writes tokens is always sent a maximum"
        worst = worst_case(price, call.input_tokens, cap, replies)
        event("admitted, capped" if worst > reservation.remaining_before * Decimal("0.99")
              else "admitted in full")
        assert worst <= reservation.remaining_before
        assert worst <= reservation.amount
        assert call.input_tokens == math.ceil(_prompt_chars(body) / 4)  # the estimate used
    finally:
        asyncio.run(budgets.settle(reservation))
        for other in others:
            asyncio.run(budgets.settle(other))


def _prompt_chars(body: dict[str, Any]) -> int:
    if "contents" in body:
        return len(body["contents"][0]["parts"][0]["text"])
    if "input" in body:
        return len(body["input"])
    return len(body["messages"][0]["content"])
