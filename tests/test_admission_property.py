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
    # Anthropic: max_tokens required; a thinking budget may exceed it (interleaved thinking).
    ("anthropic", "/v1/messages", ["claude-sonnet-4-5-20250929", "claude-opus-4-1",
                                   "claude-haiku-4-5", "claude-opus-5-5"]),
]
# A budget limit in hundred-millionths of a dollar, $0.00001 .. $10, every magnitude alike.
LIMIT = st.integers(3, 8).flatmap(lambda e: st.integers(10**e, 10 ** (e + 1)))
_VALID_MAX = st.none() | st.integers(1, 300) | st.integers(1, 10**7)
MAXIMUM = st.one_of(_VALID_MAX, _VALID_MAX, _VALID_MAX, st.sampled_from([0, -1, True, "9", 2**63]))
_VALID_N = st.none() | st.integers(1, 8) | st.integers(1, 128)
REPLIES = st.one_of(_VALID_N, _VALID_N, _VALID_N, st.sampled_from([0, 129, True]))
PROMPT = st.sampled_from([0, 1, 7, 40, 400, 4000, 30_000, 900_000]).flatmap(
    lambda n: st.sampled_from(["a" * n, "語" * n, ("word " * n)[:n]]))
_BUDGET = st.one_of(st.integers(1024, 4000), st.integers(1, 2 * 10**6), st.sampled_from(
    [1023, 1024, 1040, 0, -5, True, "2000", None]))
# $0.001 .. $10: what pays for a thousand or more thinking tokens, or nearly.
THINKING_LIMIT = st.integers(5, 8).flatmap(lambda e: st.integers(10**e, 10 ** (e + 1)))
THINKING = st.one_of(
    st.none(), st.just({"type": "adaptive"}), st.just({"type": "disabled"}),
    st.builds(lambda b: {"type": "enabled", "budget_tokens": b}, _BUDGET))


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
    if route == "anthropic":
        body = {"model": model, "messages": [{"role": "user", "content": prompt}]}
        maximum = draw(MAXIMUM)
        if maximum is not None:
            body["max_tokens"] = maximum
        thinking = draw(THINKING)
        if thinking is not None:
            body["thinking"] = thinking
        return route, path, body
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
    if route == "anthropic":  # max_tokens, or a larger thinking budget (interleaved thinking)
        present = [body[f] for f in ("max_tokens",) if f in body]
        thinking = body.get("thinking") or {}
        if thinking.get("type") == "enabled" and isinstance(thinking.get("budget_tokens"), int):
            present.append(thinking["budget_tokens"])
        return (max(present) if present else None), 1
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
    dearest_in = max((r for r in (tier.input, tier.audio_input, tier.image_input, tier.cache_write,
                                  tier.cache_write_1h) if r is not None), default=Decimal(0))
    dearest_out = max((r for r in (tier.output, tier.audio_output, tier.image_output)
                       if r is not None), default=Decimal(0))
    return ((input_tokens * dearest_in + cap * replies * dearest_out) / MILLION
            + (tier.per_request or Decimal(0)))


def scope_for(route: str, path: str) -> Request:
    return Request({"type": "http", "method": "POST", "path": f"/{route}{path}",
                    "headers": [(b"content-type", b"application/json")], "query_string": b""})


SETTINGS = settings(max_examples=500, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow])
HELD = st.lists(st.integers(0, 100), max_size=3)


@SETTINGS
@given(request=requests(), limit=LIMIT, held=HELD)
def test_an_admitted_calls_worst_case_fits_what_was_left(store, request, limit, held) -> None:
    """cap sent × output price × replies + input estimate ≤ the budget left at admission
    (limit − spend − other reservations), and the reservation holds at least that much."""
    check_admission(store, request, limit, held)


@st.composite
def thinking_requests(draw: st.DrawFn) -> tuple[str, str, dict[str, Any]]:
    """Anthropic messages with extended thinking: a maximum and a budget of any sizes (the
    budget above the maximum, as interleaved thinking allows, included)."""
    model = draw(st.sampled_from(["claude-sonnet-4-5", "claude-opus-4-1", "claude-opus-5-5"]))
    maximum = draw(st.one_of(st.integers(1, 5000), st.integers(1025, 200_000)))
    budget = draw(st.one_of(st.integers(1024, 5000), st.integers(1024, 200_000), _BUDGET))
    prompt = draw(PROMPT)
    return "anthropic", "/v1/messages", {
        "model": model, "max_tokens": maximum, "thinking": {"type": "enabled", "budget_tokens": budget},
        "messages": [{"role": "user", "content": prompt}]}


@SETTINGS
@given(request=thinking_requests(), limit=THINKING_LIMIT, held=HELD)
def test_extended_thinking_is_bounded_and_stays_valid_when_lowered(store, request, limit,
                                                                    held) -> None:
    """Thinking tokens are output: the larger of max_tokens and the thinking budget × the output
    price + input estimate ≤ the budget left, and a lowered request keeps a thinking budget
    Anthropic accepts (1024 <= budget < max_tokens, unless it was above max_tokens)."""
    check_admission(store, request, limit, held)


def check_admission(store: Store, request: tuple[str, str, dict[str, Any]], limit: int,
                    held: list[int]) -> None:
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
        for other in others:
            asyncio.run(budgets.settle(other))
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
        if route == "anthropic":
            assert_thinking_still_valid(body, json.loads(call.body))
    finally:
        asyncio.run(budgets.settle(reservation))
        for other in others:
            asyncio.run(budgets.settle(other))


def assert_thinking_still_valid(asked: dict[str, Any], sent: dict[str, Any]) -> None:
    """A lowered Anthropic request stays one Anthropic accepts: max_tokens never raised, and a
    thinking budget that was valid (1024 <= budget, under max_tokens unless it was above it:
    interleaved thinking) is still valid, and never raised."""
    assert sent["max_tokens"] <= asked["max_tokens"]
    thinking = asked.get("thinking") or {}
    budget = thinking.get("budget_tokens") if thinking.get("type") == "enabled" else None
    if isinstance(budget, bool) or not isinstance(budget, int) or budget < 1024:
        assert sent.get("thinking") == asked.get("thinking")  # left for Anthropic to judge
        return
    lowered = sent["thinking"]["budget_tokens"]
    assert 1024 <= lowered <= budget
    if lowered < budget:
        event("anthropic: thinking budget lowered")
    if budget < asked["max_tokens"]:
        assert lowered < sent["max_tokens"]


def _prompt_chars(body: dict[str, Any]) -> int:
    if "contents" in body:
        return len(body["contents"][0]["parts"][0]["text"])
    if "input" in body:
        return len(body["input"])
    return len(body["messages"][0]["content"])
