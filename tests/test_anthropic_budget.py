"""The budget rule on Anthropic's Messages API: max_tokens is lowered to what the budget left pays
(the prompt at the dearest input price, a 1-hour cache write, included), extended thinking counts
as output — its budget lowered with max_tokens and kept valid, or the call refused when the budget
cannot pay for thinking and a reply — and a reply that runs to its cap spends no more than the
budget."""

from __future__ import annotations

import json
import math
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from starlette.requests import Request

from relay.auth.tokens import issue_token
from relay.costing.cost import reserve_estimate
from relay.forward.admission import plan
from relay.forward.call import describe
from relay.policy import parse_policy
from relay.providers.registry import PROVIDERS, classify
from tests.conftest import auth, make_settings
from tests.test_worst_case import BUDGETS, CENT, DIME, MILLION, PRICES, PROMPT, RICH, sent, spend

MESSAGES = "/anthropic/v1/messages"
MODEL = "claude-sonnet-4-5"
INTERLEAVED = "interleaved-thinking-2025-05-14"


@pytest.fixture
def relay(tmp_path: Path, make_client: Any) -> Any:
    return make_client(make_settings(tmp_path, policy=parse_policy(BUDGETS)))


def ask(**extra: Any) -> dict[str, Any]:
    return {"model": MODEL, "max_tokens": 64_000,
            "messages": [{"role": "user", "content": PROMPT}], **extra}


def call(relay: Any, body: dict[str, Any], email: str, *fake: str, beta: str = "") -> Any:
    headers = {**auth(issue_token(relay.app.state.settings, email)),
               "anthropic-version": "2023-06-01"}
    if beta:
        headers["anthropic-beta"] = beta
    if fake:
        headers["x-fake"] = ",".join(fake)
    return relay.post(MESSAGES, json=body, headers=headers)


def affordable(model: str, remaining: Decimal, prompt: str = PROMPT) -> int:
    """The rule, written out: what `remaining` pays after the prompt's estimate at the dearest
    input price (a 1-hour cache write: twice the input price), at the output price."""
    price = PRICES.lookup("anthropic", model)
    assert price is not None and price.cache_write_1h is not None and price.output is not None
    prompt_cost = math.ceil(len(prompt) / 4) * price.cache_write_1h / MILLION
    return int((remaining - prompt_cost) * MILLION / price.output)


def test_max_tokens_is_lowered_to_what_the_budget_pays(relay, upstream) -> None:
    """max_tokens 64,000 of Sonnet ($0.96 of output) for a $0.01 user: sent as what $0.01 pays;
    a reply that runs to it spends no more than $0.01."""
    r = call(relay, ask(), CENT, "fill")
    assert r.status_code == 200, r.text
    cap = affordable(MODEL, Decimal("0.01"))
    assert sent(upstream)["max_tokens"] == cap == 662
    assert r.json()["usage"]["output_tokens"] == cap  # the fake ran to the cap
    assert spend(relay, CENT) <= Decimal("0.01")


def test_a_maximum_the_budget_pays_is_forwarded_unchanged(relay, upstream) -> None:
    body = ask(max_tokens=100)
    assert call(relay, body, CENT).status_code == 200
    assert sent(upstream) == body


def test_a_thinking_budget_is_lowered_with_max_tokens_and_stays_valid(relay, upstream) -> None:
    """Extended thinking for a $0.10 user: max_tokens is lowered to what $0.10 pays, and
    budget_tokens to that less 16 tokens for the reply — still at least 1,024 and under
    max_tokens, as Anthropic requires (the fake refuses anything else)."""
    body = ask(thinking={"type": "enabled", "budget_tokens": 32_000})
    r = call(relay, body, DIME, "fill")
    assert r.status_code == 200, r.text
    cap = affordable(MODEL, Decimal("0.10"))
    got = sent(upstream)
    assert got["max_tokens"] == cap
    assert got["thinking"] == {"type": "enabled", "budget_tokens": cap - 16}
    assert r.json()["usage"]["output_tokens"] == cap
    assert spend(relay, DIME) <= Decimal("0.10")


def test_a_small_thinking_budget_is_kept(relay, upstream) -> None:
    """A budget that fits under the lowered max_tokens is left as the request named it."""
    r = call(relay, ask(thinking={"type": "enabled", "budget_tokens": 2000}), DIME)
    assert r.status_code == 200, r.text
    got = sent(upstream)
    assert got["max_tokens"] == affordable(MODEL, Decimal("0.10"))
    assert got["thinking"]["budget_tokens"] == 2000


def test_interleaved_thinking_above_max_tokens_is_bounded_by_the_budget(relay, upstream) -> None:
    """With interleaved thinking the budget may exceed max_tokens: the worst case is the budget,
    so it is lowered to what the budget left pays (max_tokens, already smaller, stays)."""
    body = ask(max_tokens=2000, thinking={"type": "enabled", "budget_tokens": 50_000})
    r = call(relay, body, DIME, "fill", beta=INTERLEAVED)
    assert r.status_code == 200, r.text
    cap = affordable(MODEL, Decimal("0.10"))
    got = sent(upstream)
    assert (got["max_tokens"], got["thinking"]["budget_tokens"]) == (2000, cap - 16)
    assert r.json()["usage"]["output_tokens"] == cap - 16  # the reply ran to the thinking budget
    assert spend(relay, DIME) <= Decimal("0.10")


@pytest.mark.parametrize("maximum,budget,worst", [
    (1000, 100_000, 100_000),  # interleaved thinking: the budget is above max_tokens
    (64_000, 8000, 64_000),  # the usual case: thinking within max_tokens
])
def test_the_worst_case_is_the_larger_of_max_tokens_and_the_thinking_budget(
    maximum, budget, worst
) -> None:
    """What a call holds while in flight: output up to the larger of max_tokens and the thinking
    budget, at the output price, plus the prompt."""
    body = ask(max_tokens=maximum, thinking={"type": "enabled", "budget_tokens": budget})
    provider = PROVIDERS["anthropic"]
    scope = {"type": "http", "method": "POST", "path": MESSAGES, "query_string": b"",
             "headers": [(b"content-type", b"application/json")]}
    asked = describe(Request(scope), provider, classify(provider, "POST", "/v1/messages"),
                     "/v1/messages", json.dumps(body).encode(), "x@example.org")
    price = PRICES.lookup("anthropic", MODEL)
    assert price is not None
    held = plan(asked, price)
    assert (held.requested, held.allowance) == (worst, worst)
    assert held.hold == reserve_estimate(price, asked.input_tokens, worst)


@pytest.mark.parametrize("email,status", [(CENT, 429), (DIME, 200)])
def test_thinking_the_budget_cannot_pay_for_is_refused_with_a_clear_429(relay, upstream, email,
                                                                        status) -> None:
    """$0.01 pays for 664 tokens of Sonnet: under the 1,024 thinking tokens Anthropic requires
    plus room for a reply, so the call is refused (429, nothing forwarded) with a message that
    says why; $0.10 pays, so the same call is admitted."""
    r = call(relay, ask(thinking={"type": "enabled", "budget_tokens": 8000}), email)
    assert r.status_code == status, r.text
    if status == 429:
        assert r.json()["error"]["code"] == "insufficient_quota"
        assert "extended thinking (at least 1,040 output tokens)" in r.json()["message"]
        assert upstream.state.received == []


def test_adaptive_thinking_is_bounded_by_max_tokens(relay, upstream) -> None:
    """Claude Code's `thinking: {"type": "adaptive"}` has no budget of its own: max_tokens is
    lowered as for any message, and the thinking setting passes unchanged."""
    r = call(relay, ask(thinking={"type": "adaptive"}), CENT)
    assert r.status_code == 200, r.text
    assert sent(upstream)["max_tokens"] == affordable(MODEL, Decimal("0.01"))
    assert sent(upstream)["thinking"] == {"type": "adaptive"}


@pytest.mark.parametrize("budget", ["8000", 8000.5, True, 512, 0])
def test_a_thinking_budget_anthropic_would_refuse_is_refused(relay, upstream, budget) -> None:
    """A budget that is not a whole number of at least 1,024: 400, not forwarded (the relay
    could neither bound it nor lower it to a valid one)."""
    r = call(relay, ask(thinking={"type": "enabled", "budget_tokens": budget}), RICH)
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_thinking"
    assert upstream.state.received == []


def test_tool_definitions_count_in_the_prompts_estimate(relay, upstream) -> None:
    """An agent's tool definitions are prompt too (Claude Code sends ~30,000 characters of
    them): the cap is what the budget pays after the prompt's text *and* its tools."""
    tools = [{"name": f"tool{i}", "description": "does a thing " * 40,
              "input_schema": {"type": "object", "properties": {"path": {"type": "string"}}}}
             for i in range(5)]
    r = call(relay, ask(tools=tools), CENT)
    assert r.status_code == 200, r.text
    size = len(PROMPT) + len(json.dumps(tools))
    price = PRICES.lookup("anthropic", MODEL)
    assert price is not None and price.cache_write_1h is not None and price.output is not None
    left = Decimal("0.01") - math.ceil(size / 4) * price.cache_write_1h / MILLION
    assert sent(upstream)["max_tokens"] == int(left * MILLION / price.output)
