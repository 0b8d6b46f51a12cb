"""Budgets under concurrency: reservations stop parallel requests from each seeing the same
untouched budget; every admitted call's worst case fits what is left (its output cap lowered to
it); per-user rate limits."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from relay.app import create_app
from relay.auth.tokens import issue_token
from relay.policy import parse_policy
from relay.settings import Settings
from testkit.fakes.server import serve_asgi
from testkit.fakes.upstream import create_fake_upstream
from tests.conftest import POLICY, auth, make_settings, provider_part

LIMIT = Decimal("0.002")
WORTH = Decimal("0.0004")  # claude-3.5-haiku on the fake: 5 prompt words x $0.8/M + 99 x $4/M
TIGHT = "tight@example.com"
CENT = "cent@example.com"
CENT_LIMIT = Decimal("0.01")
LIMITED = "limited@example.com"
TIGHT_POLICY: dict[str, Any] = {
    **POLICY,
    "budget": {
        **POLICY["budget"],
        TIGHT: {"limit": float(LIMIT), "days": 1},
        CENT: {"limit": float(CENT_LIMIT), "days": 1},
        LIMITED: {"limit": 5.0, "days": 1, "rpm": 3},
    },
}


def _settings(tmp_path: Path, base: str) -> Settings:
    return make_settings(tmp_path, base=base, policy=parse_policy(TIGHT_POLICY))


@pytest.fixture
def live(tmp_path: Path) -> Iterator[tuple[str, Settings, Any, Any]]:
    """The relay and the fake upstream, each on a real port, so requests truly overlap."""
    upstream = create_fake_upstream()
    with serve_asgi(upstream) as up:
        settings = _settings(tmp_path, up)
        app = create_app(settings)
        with serve_asgi(app) as relay:
            yield relay, settings, app, upstream


async def _stream_one(
    client: httpx.AsyncClient, url: str, body: dict[str, Any], headers: dict[str, str]
) -> tuple[int, dict[str, Any] | None, str, float, float]:
    """(status, error body, text, when the headers came, when the body ended)."""
    async with client.stream("POST", url, json=body, headers=headers) as r:
        answered = time.monotonic()
        text = (await r.aread()).decode()
        error = json.loads(text) if r.status_code != 200 else None
        return r.status_code, error, text, answered, time.monotonic()


async def _parallel(url: str, body: dict[str, Any], headers: dict[str, str], n: int) -> list:
    limits = httpx.Limits(max_connections=n + 5)
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:
        return await asyncio.gather(*(_stream_one(client, url, body, headers) for _ in range(n)))


def _spend(app: Any, email: str) -> Decimal:
    store = app.state.store
    store.flush()
    [(total,)] = store.query("SELECT coalesce(sum(cost), 0) FROM requests WHERE email = ?", [email])
    assert Decimal(total) == store.spend(email, 1)  # ledger and the budget's mirror agree
    return Decimal(total)


def _overlapped(results: list) -> bool:
    """Every request had its answer before the first admitted stream ended: all 30 were in
    flight together, so none was admitted against a budget another had already settled."""
    ends = [end for status, *_, end in results if status == 200]
    return max(answered for *_, answered, _ in results) < min(ends)


def test_thirty_parallel_streams_stay_within_the_budget(live) -> None:
    """30 parallel streamed requests (max_tokens 99, worth $0.0004 each) against a $0.002
    budget, all in flight together: exactly 5 are admitted — four in full, the fifth with
    max_tokens lowered to the 97 tokens the rest of the budget pays for — and 25 get the budget
    error; spend is $0.001992, what the provider billed, never over the limit."""
    relay, settings, app, upstream = live
    body = {
        "model": "anthropic/claude-3.5-haiku",
        "stream": True,
        "max_tokens": 99,
        "messages": [{"role": "user", "content": "count to a hundred please"}],
    }
    headers = {
        **auth(issue_token(settings, TIGHT)),
        "x-fake": "slow", "x-fake-delay": "20", "x-fake-chunks": "99",
    }
    results = asyncio.run(_parallel(f"{relay}/openrouter/v1/chat/completions", body, headers, 30))
    assert _overlapped(results)
    ok = [r for r in results if r[0] == 200]
    refused = [r for r in results if r[0] != 200]
    spend = _spend(app, TIGHT)
    calls = [b for b in upstream.state.billed if b["path"] == "v1/chat/completions"]
    served = sum(Decimal(str(b["cost"])) for b in calls)
    caps = sorted(json.loads(r["body"])["max_tokens"] for r in upstream.state.received
                  if r["path"].endswith("/chat/completions"))
    assert all(provider_part(text).endswith("data: [DONE]") for _, _, text, *_ in ok)
    assert (len(ok), len(refused)) == (5, 25)
    assert caps == [97, 99, 99, 99, 99]
    assert spend == served == 4 * WORTH + Decimal("0.000392") == Decimal("0.001992")
    for status, error, *_ in refused:
        assert status == 429 and error is not None
        assert error["error"]["code"] == "insufficient_quota"
        assert error["message"].startswith("Usage $")


REASONING = {  # a reasoning model per provider and endpoint, asked with no output maximum
    "openai-chat": ("/openai/v1/chat/completions",
                    {"model": "gpt-5-mini", "messages": [{"role": "user", "content": "think"}]}),
    "openai-responses": ("/openai/v1/responses", {"model": "o4-mini", "input": "think hard"}),
    "gemini": ("/geminiv1beta/models/gemini-2.5-flash:generateContent",
               {"contents": [{"parts": [{"text": "think"}]}]}),
    "openrouter-unlisted": ("/openrouter/v1/chat/completions",
                            {"model": "openai/o3", "messages": [{"role": "user", "content": "x"}]}),
}


@pytest.mark.parametrize("case", list(REASONING))
def test_thirty_parallel_calls_without_a_maximum_cannot_outrun_the_budget(live, case) -> None:
    """30 parallel calls naming no output maximum to a reasoning model, against a $0.01
    budget, with a provider whose replies run to their full maximum (the cap sent, else 100k
    tokens): every reply ran to the cap the relay sent, and spend never exceeds the budget."""
    relay, settings, app, upstream = live
    path, body = REASONING[case]
    headers = {**auth(issue_token(settings, CENT)), "x-fake": "fill,slow", "x-fake-delay": "20"}
    results = asyncio.run(_parallel(relay + path, body, headers, 30))
    admitted = [r for r in results if r[0] == 200]
    assert admitted and all(r[0] in (200, 429) for r in results)
    caps = [_cap_sent(json.loads(r["body"])) for r in upstream.state.received
            if r["method"] == "POST"]
    assert len(caps) == len(admitted) and all(caps)
    spend = _spend(app, CENT)
    [(written,)] = app.state.store.query(
        "SELECT sum(output_tokens) FROM requests WHERE email = ?", [CENT])
    assert written == sum(caps)  # each reply ran to its cap: the cap was the bound
    assert spend <= CENT_LIMIT


def _cap_sent(body: dict[str, Any]) -> int | None:
    """The output maximum a provider reads in this body (any spelling)."""
    for holder in (body, body.get("generationConfig") or {}):
        for field in ("max_completion_tokens", "max_tokens", "max_output_tokens",
                      "maxOutputTokens"):
            if field in holder:
                return holder[field]
    return None


def test_output_allowance_is_lowered_to_what_the_budget_can_pay(tmp_path, make_client, upstream) -> None:
    """With $0.002 left, a gpt-4o-mini request for 100k output tokens is forwarded with
    max_completion_tokens lowered to what $0.002 buys after the prompt ($0.60/M: 3,332 tokens);
    the answer tells the browser what is left, exactly, in a header CORS lets it read."""
    client = make_client(make_settings(tmp_path, policy=parse_policy(TIGHT_POLICY)))
    tok = issue_token(client.app.state.settings, TIGHT)
    body = {"model": "gpt-4o-mini", "max_completion_tokens": 100_000,
            "messages": [{"role": "user", "content": "write a long story"}]}
    r = client.post("/openai/v1/chat/completions", json=body, headers=auth(tok))
    assert r.status_code == 200, r.text
    sent = json.loads(upstream.state.received[-1]["body"])
    assert sent["max_completion_tokens"] == 3332  # (0.002 - 5 x $0.15/M) / $0.60/M
    cost = Decimal(r.headers["x-aipipe-cost"])
    assert cost == Decimal("0.00000360")  # 4 prompt words x $0.15/M + 5 tokens x $0.60/M
    assert r.headers["x-aipipe-remaining"] == f"{LIMIT - cost:.6f}" == "0.001996"
    exposed = [h.strip() for h in r.headers["access-control-expose-headers"].split(",")]
    assert {"x-aipipe-remaining", "x-aipipe-cost", "x-aipipe-cost-source"} <= set(exposed)


def test_budget_too_small_for_any_reply_is_refused_before_the_provider(
    tmp_path, make_client, upstream
) -> None:
    """When what is left cannot pay for even a few output tokens, the relay answers 429
    insufficient_quota instead of forwarding a useless, capped request."""
    policy = {**TIGHT_POLICY, "budget": {**TIGHT_POLICY["budget"], TIGHT: {"limit": 1e-7, "days": 1}}}
    client = make_client(make_settings(tmp_path, policy=parse_policy(policy)))
    tok = issue_token(client.app.state.settings, TIGHT)
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi " * 200}]}
    r = client.post("/openai/v1/chat/completions", json=body, headers=auth(tok))
    assert r.status_code == 429
    assert r.json()["error"]["code"] == "insufficient_quota"
    assert r.headers["x-should-retry"] == "false"
    assert upstream.state.received == []


def test_reservations_are_released_after_errors(tmp_path, make_client) -> None:
    """Upstream errors, bad bodies and refusals all release their reservation: afterwards the
    whole budget is available again."""
    client = make_client(make_settings(tmp_path, policy=parse_policy(TIGHT_POLICY)))
    tok = issue_token(client.app.state.settings, TIGHT)
    chat = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
    for fake in ("error500", "error429", "leakkey"):
        r = client.post("/openai/v1/chat/completions", json=chat, headers={**auth(tok), "x-fake": fake})
        assert r.status_code >= 400
    r = client.post("/openai/v1/chat/completions", json={**chat, "max_tokens": "x"}, headers=auth(tok))
    assert r.status_code == 400
    assert client.app.state.budgets._reserved.get(TIGHT, Decimal(0)) == 0
    assert asyncio.run(client.app.state.budgets.remaining(TIGHT)) == LIMIT


def test_rate_limit_answers_429_with_retry_after(tmp_path, make_client) -> None:
    """A budget entry with rpm = 3 lets three requests through in a minute, then answers 429
    rate_limit_exceeded with a Retry-After the OpenAI SDKs honour; other users are unaffected."""
    client = make_client(make_settings(tmp_path, policy=parse_policy(TIGHT_POLICY)))
    settings = client.app.state.settings
    chat = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
    limited = auth(issue_token(settings, LIMITED))
    codes = [client.post("/openai/v1/chat/completions", json=chat, headers=limited).status_code
             for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    r = client.post("/openai/v1/chat/completions", json=chat, headers=limited)
    assert r.status_code == 429
    assert r.json()["error"]["code"] == "rate_limit_exceeded"
    assert 1 <= int(r.headers["retry-after"]) <= 61
    assert "retry-after" in r.headers["access-control-expose-headers"]
    other = auth(issue_token(settings, "someone@example.com"))
    assert client.post("/openai/v1/chat/completions", json=chat, headers=other).status_code == 200


def test_several_replies_share_the_output_cap(tmp_path, make_client, upstream) -> None:
    """n = 8 replies cost eight allowances: with $0.002 left the per-reply cap is an eighth of
    what one reply could have (416 tokens instead of 3,332)."""
    client = make_client(make_settings(tmp_path, policy=parse_policy(TIGHT_POLICY)))
    tok = issue_token(client.app.state.settings, TIGHT)
    body = {"model": "gpt-4o-mini", "n": 8, "messages": [{"role": "user", "content": "a poem"}]}
    r = client.post("/openai/v1/chat/completions", json=body, headers=auth(tok))
    assert r.status_code == 200, r.text
    sent = json.loads(upstream.state.received[-1]["body"])
    # (0.002 - 2 x $0.15/M) / $0.60/M / 8
    assert sent["n"] == 8 and sent["max_completion_tokens"] == 3332 // 8
    bad = client.post("/openai/v1/chat/completions", json={**body, "n": "8"}, headers=auth(tok))
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_n"


def test_the_rate_window_slides_a_minute() -> None:
    """rpm = 3: the fourth call inside a minute is refused with the seconds until the oldest
    call leaves the window; once it has, one more call passes, and only one."""
    from relay.costing.budget import RateWindows
    from relay.errors import RateLimited
    from relay.policy import Budget

    now = [1000.0]
    windows, budget = RateWindows(clock=lambda: now[0]), Budget(limit=Decimal(1), days=1, rpm=3)
    for step in (0, 10, 20):
        now[0] = 1000.0 + step
        windows.check("a@x.org", budget)
    now[0] = 1030.0
    with pytest.raises(RateLimited) as refused:
        windows.check("a@x.org", budget)
    assert refused.value.headers["Retry-After"] == "31"  # the call at 1000 s leaves at 1060 s
    windows.check("b@x.org", budget)  # another user's window is their own
    now[0] = 1060.0
    windows.check("a@x.org", budget)  # the first call has left the window
    with pytest.raises(RateLimited):
        windows.check("a@x.org", budget)
