"""Worst case bounded: whatever a request names (or does not), an admitted call's worst-case cost
— the input estimate plus the output cap sent upstream at the output price, for every reply —
plus what is already reserved never exceeds the user's limit. The cap goes in the field the
provider reads, in the spelling the request used; models missing from OpenRouter's list are
bounded too, and calls that cannot be bounded are refused before the provider is called."""

from __future__ import annotations

import json
import math
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from relay.auth.tokens import issue_token
from relay.costing.pricing import PriceTable
from relay.policy import parse_policy
from testkit.fakes.protocol import DEFAULT_KEYS, OPENROUTER_PRICES
from tests.conftest import POLICY, auth, make_settings
from tests.fake_port import FAKES

PRICES = PriceTable.load()
MILLION = Decimal(1_000_000)
CENT = "cent@example.org"  # $0.01 a day
CENT2 = "cent2@example.org"  # another
DIME = "dime@example.org"  # $0.10 a day
RICH = "rich@example.com"  # $10 over 30 days (conftest's policy)
BUDGETS: dict[str, Any] = {
    **POLICY,
    "budget": {**POLICY["budget"], CENT: {"limit": 0.01, "days": 1},
               CENT2: {"limit": 0.01, "days": 1},
               DIME: {"limit": 0.10, "days": 1}},
}
CHAT = "/openai/v1/chat/completions"
RESPONSES = "/openai/v1/responses"
OPENROUTER = "/openrouter/v1/chat/completions"
GEMINI = "/geminiv1beta/models/gemini-2.5-flash:generateContent"
PROMPT = "write me a long story about a lighthouse"


@pytest.fixture
def relay(tmp_path: Path, make_client: Any) -> Any:
    return make_client(make_settings(tmp_path, policy=parse_policy(BUDGETS)))


def post(relay: Any, path: str, body: dict[str, Any], email: str, *fake: str) -> Any:
    tok = issue_token(relay.app.state.settings, email)
    headers = {**auth(tok), **({"x-fake": ",".join(fake)} if fake else {})}
    return relay.post(path, json=body, headers=headers)


def sent(upstream: Any) -> dict[str, Any]:
    """The body the provider last received."""
    return json.loads(upstream.state.received[-1]["body"])


def expected_cap(model: str, provider: str, remaining: Decimal, prompt: str, replies: int = 1) -> int:
    """The rule, written out: what `remaining` dollars pay for, per reply, after the prompt's
    estimate (⌈characters / 4⌉ tokens at the dearest input price), at the dearest output price
    — never more than the model's largest reply."""
    price = PRICES.lookup(provider, model)
    assert price is not None
    dearest_in = max(r for r in (price.input, price.audio_input, price.image_input,
                                 price.cache_write) if r is not None)
    dearest_out = max(r for r in (price.output, price.audio_output, price.image_output)
                      if r is not None)
    prompt_cost = math.ceil(len(prompt) / 4) * dearest_in / MILLION
    affordable = int((remaining - prompt_cost) * MILLION / dearest_out) // replies
    assert price.max_output is not None
    return min(affordable, price.max_output)


def spend(relay: Any, email: str) -> Decimal:
    relay.app.state.store.flush()
    return relay.app.state.store.spend(email, 30)


# -- finding 1: a call without a maximum is bounded ----------------------------------------------
def test_a_call_naming_no_maximum_is_capped_to_what_the_budget_pays(relay, upstream) -> None:
    """o3 without max_tokens for a $0.10 user: the relay sends max_completion_tokens = what
    $0.10 pays after the prompt (12,498 tokens at $8/M), and a reply that runs to it spends no
    more than $0.10. (Before: nothing was sent, and o3 could write 100k tokens, $0.80.)"""
    body = {"model": "o3", "messages": [{"role": "user", "content": PROMPT}]}
    r = post(relay, CHAT, body, DIME, "fill")
    assert r.status_code == 200, r.text
    cap = expected_cap("o3", "openai", Decimal("0.10"), PROMPT)
    assert sent(upstream)["max_completion_tokens"] == cap == 12_497
    assert "max_tokens" not in sent(upstream)
    assert r.json()["usage"]["completion_tokens"] == cap  # the fake ran to the cap
    assert spend(relay, DIME) <= Decimal("0.10")


def test_a_call_naming_no_maximum_gets_the_models_own_maximum(relay, upstream) -> None:
    """When the budget pays for the model's largest reply, that is the cap sent: o3's 100,000
    tokens (its `max_output` in the price data), never left open."""
    body = {"model": "o3", "messages": [{"role": "user", "content": PROMPT}]}
    assert post(relay, CHAT, body, RICH).status_code == 200
    assert sent(upstream)["max_completion_tokens"] == 100_000


def test_every_model_that_writes_text_has_a_largest_reply() -> None:
    """Every priced model with an output price names its `max_output`: the bound for calls that
    name no maximum, and the cap the relay sends for them."""
    missing = [f"{p}/{m}" for p, m, price in PRICES.entries()
               if price.output is not None and price.max_output is None]
    assert missing == []


# -- caps in every spelling (issue 20, item 4) --------------------------------------------------
@pytest.mark.parametrize("path,model,body,where,field", [
    (CHAT, "gpt-4.1-nano", {}, (), "max_completion_tokens"),
    (CHAT, "gpt-4.1-nano", {"max_completion_tokens": 10**6}, (), "max_completion_tokens"),
    (CHAT, "gpt-4.1-nano", {"max_tokens": 10**6}, (), "max_tokens"),
    (RESPONSES, "gpt-4.1-nano", {}, (), "max_output_tokens"),
    (RESPONSES, "gpt-4.1-nano", {"max_output_tokens": 10**6}, (), "max_output_tokens"),
    (OPENROUTER, "openai/gpt-4o-mini", {}, (), "max_tokens"),
    (OPENROUTER, "openai/gpt-4o-mini", {"max_tokens": 10**6}, (), "max_tokens"),
    (OPENROUTER, "openai/gpt-4o-mini", {"max_completion_tokens": 10**6}, (),
     "max_completion_tokens"),
    (GEMINI, "gemini-2.5-flash", {}, ("generationConfig",), "maxOutputTokens"),
    (GEMINI, "gemini-2.5-flash", {"generationConfig": {"maxOutputTokens": 10**6}},
     ("generationConfig",), "maxOutputTokens"),
    (GEMINI, "gemini-2.5-flash", {"generationConfig": {"max_output_tokens": 10**6}},
     ("generationConfig",), "max_output_tokens"),
    (GEMINI, "gemini-2.5-flash", {"generation_config": {"maxOutputTokens": 10**6}},
     ("generation_config",), "maxOutputTokens"),
    (GEMINI, "gemini-2.5-flash", {"generation_config": {"max_output_tokens": 10**6}},
     ("generation_config",), "max_output_tokens"),
])
def test_the_cap_goes_in_the_field_the_provider_reads(
    relay, upstream, path, model, body, where, field
) -> None:
    """For each provider and endpoint, a request naming no maximum, or a larger one than a
    $0.01 budget pays, is sent with exactly the affordable cap — in the spelling the request
    used, else the provider's own — and no other spelling is added."""
    provider = {CHAT: "openai", RESPONSES: "openai", OPENROUTER: "openrouter", GEMINI: "gemini"}[path]
    if provider == "gemini":
        request = {"contents": [{"parts": [{"text": PROMPT}]}], **body}
    elif path == RESPONSES:
        request = {"model": model, "input": PROMPT, **body}
    else:
        request = {"model": model, "messages": [{"role": "user", "content": PROMPT}], **body}
    r = post(relay, path, request, CENT)
    assert r.status_code == 200, r.text
    got = sent(upstream)
    for key in where:
        got = got[key]
    if provider == "openrouter":  # priced from the fake's /models list
        p, c = OPENROUTER_PRICES[model]
        prompt_cost = math.ceil(len(PROMPT) / 4) * Decimal(p)
        cap = int((Decimal("0.01") - prompt_cost) / Decimal(c))
    else:
        cap = expected_cap(model, provider, Decimal("0.01"), PROMPT)
    assert got[field] == cap
    spellings = {"maxOutputTokens", "max_output_tokens", "max_tokens", "max_completion_tokens"}
    assert [k for k in got if k in spellings] == [field]


@pytest.mark.parametrize("replies", [
    {"n": 4}, {"best_of": 4}, {"n": 2, "best_of": 4},
])
def test_several_replies_divide_the_cap_openai(relay, upstream, replies) -> None:
    """n (or best_of) replies each run to the cap: the per-reply cap is a quarter of one
    reply's, so all four together still fit the budget."""
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": PROMPT}], **replies}
    assert post(relay, CHAT, body, CENT).status_code == 200
    cap = expected_cap("gpt-4o-mini", "openai", Decimal("0.01"), PROMPT, replies=4)
    assert sent(upstream)["max_completion_tokens"] == cap


@pytest.mark.parametrize("config", ["generationConfig", "generation_config"])
@pytest.mark.parametrize("count", ["candidateCount", "candidate_count"])
def test_several_candidates_divide_the_cap_gemini(relay, upstream, config, count) -> None:
    """Gemini's candidate count, in either spelling and either config spelling, divides the cap."""
    body = {"contents": [{"parts": [{"text": PROMPT}]}], config: {count: 4}}
    assert post(relay, GEMINI, body, CENT).status_code == 200
    cap = expected_cap("gemini-2.5-flash", "gemini", Decimal("0.01"), PROMPT, replies=4)
    assert sent(upstream)[config] == {count: 4, "maxOutputTokens": cap}


def test_the_prompt_cost_comes_off_the_cap(relay, upstream) -> None:
    """The same budget buys fewer output tokens after a longer prompt: exactly the prompt's
    estimated cost, converted at the output price, comes off the cap."""
    short, long = "hi", "word " * 4000  # 1 token; 5,000 tokens at $0.10/M = $0.0005
    caps = []
    for prompt, email in ((short, CENT), (long, CENT2)):  # two users, each with $0.01 left
        body = {"model": "gpt-4.1-nano", "messages": [{"role": "user", "content": prompt}]}
        assert post(relay, CHAT, body, email).status_code == 200
        caps.append(sent(upstream)["max_completion_tokens"])
    assert caps == [expected_cap("gpt-4.1-nano", "openai", Decimal("0.01"), p)
                    for p in (short, long)]
    assert caps[0] - caps[1] == 1249  # 4,999 tokens × $0.10 / $0.40, rounded down


@pytest.mark.parametrize("limit,admitted", [("0.0000096", False), ("0.00001025", True)])
def test_the_smallest_useful_cap_is_sixteen_tokens(tmp_path, make_client, upstream, limit,
                                                   admitted) -> None:
    """A budget that pays for 15 output tokens after the prompt is refused (429, nothing
    forwarded); one that pays for 16 is admitted with a cap of 16."""
    policy = {**BUDGETS, "budget": {**BUDGETS["budget"], "edge@example.org":
                                    {"limit": float(limit), "days": 1}}}
    relay = make_client(make_settings(tmp_path, policy=parse_policy(policy)))
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
    r = post(relay, CHAT, body, "edge@example.org")
    # "hi": one token at $0.15/M = $0.00000015; then 15 or 16 tokens at $0.60/M.
    if admitted:
        assert r.status_code == 200, r.text
        assert sent(upstream)["max_completion_tokens"] == 16
    else:
        assert r.status_code == 429 and r.json()["error"]["code"] == "insufficient_quota"
        assert upstream.state.received == []


def test_a_smaller_maximum_that_fits_is_left_alone(relay, upstream) -> None:
    """A request whose own maximum the budget pays for is forwarded unchanged."""
    body = {"model": "gpt-4o-mini", "max_tokens": 50,
            "messages": [{"role": "user", "content": PROMPT}]}
    assert post(relay, CHAT, body, CENT).status_code == 200
    assert sent(upstream) == body


# -- finding 2: OpenRouter models its list does not price ---------------------------------------
@pytest.mark.parametrize("model", [
    "test/nocost-model:nitro", "test/nocost-model:online", "openrouter/auto", "nobody/unlisted",
])
def test_openrouter_models_missing_from_the_list_are_bounded_by_its_dearest(
    relay, upstream, model
) -> None:
    """A variant, a router or an unlisted id is bounded by the dearest prices in OpenRouter's
    list ($1/M in, $4/M out on the fake): `max_tokens: 1000000` is lowered to what $0.10 pays
    at those prices, and `:online` also holds the web search ($0.02). (Before: $0.001 was
    reserved and the million forwarded.)"""
    body = {"model": model, "max_tokens": 1_000_000,
            "messages": [{"role": "user", "content": PROMPT}]}
    r = post(relay, OPENROUTER, body, DIME)
    assert r.status_code == 200, r.text
    dearest_in = max(Decimal(p) for p, _ in OPENROUTER_PRICES.values())
    dearest_out = max(Decimal(c) for _, c in OPENROUTER_PRICES.values())
    web = Decimal("0.02") if model.endswith(":online") else 0
    left = Decimal("0.10") - math.ceil(len(PROMPT) / 4) * dearest_in - web
    assert sent(upstream)["max_tokens"] == int(left / dearest_out)


def test_openrouter_usage_without_cost_is_charged_tokens_times_the_bound(relay, upstream) -> None:
    """An unlisted model whose answer reports tokens but no cost is charged its tokens at the
    bound's prices — never a flat placeholder. Here the reply runs to its whole cap."""
    body = {"model": "test/nocost-model:nitro", "max_tokens": 1_000_000,
            "messages": [{"role": "user", "content": PROMPT}]}
    r = post(relay, OPENROUTER, body, CENT, "fill")
    assert r.status_code == 200, r.text
    usage = r.json()["usage"]
    assert "cost" not in usage and usage["completion_tokens"] == sent(upstream)["max_tokens"]
    expected = (usage["prompt_tokens"] * Decimal("1") + usage["completion_tokens"] * Decimal("4")) / MILLION
    assert Decimal(r.headers["x-aipipe-cost"]) == expected.quantize(Decimal("1e-8"))
    assert spend(relay, CENT) == expected <= Decimal("0.01")


def test_openrouter_fallback_models_are_priced_at_the_dearest(relay, upstream) -> None:
    """`models: [cheap, dear]` may run on the dear one: the cap is what the budget pays at the
    dearer model's price."""
    body = {"model": "openai/gpt-4.1-nano", "models": ["openai/gpt-4.1-nano",
                                                       "anthropic/claude-3.5-haiku"],
            "messages": [{"role": "user", "content": PROMPT}]}
    assert post(relay, OPENROUTER, body, CENT).status_code == 200
    p, c = OPENROUTER_PRICES["anthropic/claude-3.5-haiku"]
    left = Decimal("0.01") - math.ceil(len(PROMPT) / 4) * Decimal(p)
    assert sent(upstream)["max_tokens"] == int(left / Decimal(c))


def test_openrouter_without_its_price_list_is_refused(tmp_path, make_client, upstream) -> None:
    """When OpenRouter's price list cannot be had, a call cannot be bounded: 503, not forwarded."""
    settings = make_settings(tmp_path, policy=parse_policy(BUDGETS))
    bases = {**settings.provider_bases, "openrouter": f"{FAKES.url}/nowhere"}  # the fake: 404
    relay = make_client(make_settings(tmp_path, policy=parse_policy(BUDGETS), provider_bases=bases))
    body = {"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
    r = post(relay, OPENROUTER, body, CENT)
    assert r.status_code == 503 and r.json()["error"]["code"] == "prices_unavailable"
    assert upstream.state.received == []  # (the fake records no call to an unknown provider)


# -- finding 3: Responses API in the background -------------------------------------------------
@pytest.mark.parametrize("value", [True, "yes", 1])
def test_background_responses_are_refused(relay, upstream, value) -> None:
    """`background: true` would be answered `queued` with no usage and run on after it: 400
    unbounded_request for AI Pipe tokens, nothing forwarded."""
    body = {"model": "gpt-4o-mini", "input": "hi", "background": value}
    r = post(relay, RESPONSES, body, RICH)
    assert r.status_code == 400 and r.json()["error"]["code"] == "unbounded_request"
    assert upstream.state.received == []
    ok = post(relay, RESPONSES, {**body, "background": False}, RICH)
    assert ok.status_code == 200


def test_background_responses_pass_with_a_native_key(relay, upstream) -> None:
    """A caller's own OpenAI key pays for itself: its background responses are forwarded."""
    body = {"model": "gpt-4o-mini", "input": "hi", "background": True}
    r = relay.post(RESPONSES, json=body, headers=auth("sk-callers-own-key"))
    assert upstream.state.received[-1]["path"] == "/openai/v1/responses"
    assert r.status_code == 401  # the fake knows only the operator's key


# -- finding 4: Gemini's snake_case ----------------------------------------------------------------
def test_gemini_snake_case_limits_are_read_and_capped(relay, upstream) -> None:
    """`generationConfig.max_output_tokens: 1000000` is capped in place; no camelCase twin is
    added beside it for Google to choose between."""
    body = {"contents": [{"parts": [{"text": PROMPT}]}],
            "generationConfig": {"max_output_tokens": 1_000_000, "temperature": 0.2}}
    assert post(relay, GEMINI, body, CENT, "fill").status_code == 200
    cap = expected_cap("gemini-2.5-flash", "gemini", Decimal("0.01"), PROMPT)
    assert sent(upstream)["generationConfig"] == {"max_output_tokens": cap, "temperature": 0.2}
    assert spend(relay, CENT) <= Decimal("0.01")


def test_gemini_both_config_spellings_are_refused(relay, upstream) -> None:
    """generationConfig and generation_config together: which one Google reads is unclear, so
    the call is refused (400) rather than capped in the wrong one."""
    body = {"contents": [{"parts": [{"text": "hi"}]}], "generationConfig": {},
            "generation_config": {"max_output_tokens": 10**6}}
    r = post(relay, GEMINI, body, RICH)
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_generation_config"
    assert upstream.state.received == []


def test_a_json_endpoint_needs_a_json_body(relay, upstream) -> None:
    """A chat body sent as text/plain would reach the provider with limits the relay never
    read: 400, not forwarded."""
    tok = issue_token(relay.app.state.settings, RICH)
    body = json.dumps({"model": "o3", "max_completion_tokens": 100000, "messages": []})
    r = relay.post(CHAT, content=body, headers={**auth(tok), "content-type": "text/plain"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_json"
    assert upstream.state.received == []
    assert DEFAULT_KEYS["openai"] not in r.text
