"""Budgets under concurrency: reservations stop parallel requests from each seeing the same
untouched budget; output allowances are capped to what is left; per-user rate limits."""

from __future__ import annotations

import asyncio
import json
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
LIMITED = "limited@example.com"
TIGHT_POLICY: dict[str, Any] = {
    **POLICY,
    "budget": {
        **POLICY["budget"],
        TIGHT: {"limit": float(LIMIT), "days": 1},
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
) -> tuple[int, dict[str, Any] | None, str]:
    async with client.stream("POST", url, json=body, headers=headers) as r:
        text = (await r.aread()).decode()
        error = json.loads(text) if r.status_code != 200 else None
        return r.status_code, error, text


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


def test_thirty_parallel_streams_overshoot_by_at_most_one_request(live) -> None:
    """30 parallel streamed requests worth $0.0004 each against a $0.002 budget: spend ends at
    most one request over the limit, and every other request gets the budget error."""
    relay, settings, app, upstream = live
    body = {
        "model": "anthropic/claude-3.5-haiku",
        "stream": True,
        "max_tokens": 99,
        "messages": [{"role": "user", "content": "count to a hundred please"}],
    }
    headers = {
        **auth(issue_token(settings, TIGHT)),
        "x-fake": "slow", "x-fake-delay": "5", "x-fake-chunks": "99",
    }
    results = asyncio.run(_parallel(f"{relay}/openrouter/v1/chat/completions", body, headers, 30))
    ok = [r for r in results if r[0] == 200]
    refused = [r for r in results if r[0] != 200]
    spend = _spend(app, TIGHT)
    served = sum(
        Decimal(str(b["cost"])) for b in upstream.state.billed if b["path"] == "v1/chat/completions"
    )
    assert all(provider_part(text).endswith("data: [DONE]") for _, _, text in ok)
    assert len(ok) * WORTH == spend == served  # every admitted stream was priced at its worth
    assert LIMIT - WORTH < spend <= LIMIT + WORTH  # the budget is used, and held
    assert len(ok) + len(refused) == 30 and len(refused) >= 30 - 6
    for status, error, _ in refused:
        assert status == 429 and error is not None
        assert error["error"]["code"] == "insufficient_quota"
        assert error["message"].startswith("Usage $")


def test_parallel_requests_without_max_tokens_cannot_outrun_the_budget(live) -> None:
    """Requests that name no output maximum reserve the default allowance, so even 30 at once
    spend no more than the limit plus one request."""
    relay, settings, app, _ = live
    body = {
        "model": "gpt-4o-mini",
        "stream": True,
        "messages": [{"role": "user", "content": "hello there"}],
    }
    headers = {**auth(issue_token(settings, TIGHT)), "x-fake": "slow", "x-fake-delay": "5",
               "x-fake-chunks": "600"}
    results = asyncio.run(_parallel(f"{relay}/openai/v1/chat/completions", body, headers, 30))
    admitted = sum(1 for status, _, _ in results if status == 200)
    per_request = _spend(app, TIGHT) / admitted
    assert admitted >= 1
    assert _spend(app, TIGHT) <= LIMIT + per_request
    assert all(status in (200, 429) for status, _, _ in results)


def test_output_allowance_is_lowered_to_what_the_budget_can_pay(tmp_path, make_client, upstream) -> None:
    """With $0.002 left, a gpt-4o-mini request for 100k output tokens is forwarded with
    max_completion_tokens lowered to what $0.002 buys ($0.60/M: about 3,300 tokens)."""
    client = make_client(make_settings(tmp_path, policy=parse_policy(TIGHT_POLICY)))
    tok = issue_token(client.app.state.settings, TIGHT)
    body = {"model": "gpt-4o-mini", "max_completion_tokens": 100_000,
            "messages": [{"role": "user", "content": "write a long story"}]}
    r = client.post("/openai/v1/chat/completions", json=body, headers=auth(tok))
    assert r.status_code == 200, r.text
    sent = json.loads(upstream.state.received[-1]["body"])
    assert 3000 < sent["max_completion_tokens"] <= 3334
    assert Decimal(r.headers["x-aipipe-remaining"]) < LIMIT


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
    what one reply could have (about 410 tokens instead of 3,300)."""
    client = make_client(make_settings(tmp_path, policy=parse_policy(TIGHT_POLICY)))
    tok = issue_token(client.app.state.settings, TIGHT)
    body = {"model": "gpt-4o-mini", "n": 8, "messages": [{"role": "user", "content": "a poem"}]}
    r = client.post("/openai/v1/chat/completions", json=body, headers=auth(tok))
    assert r.status_code == 200, r.text
    sent = json.loads(upstream.state.received[-1]["body"])
    assert sent["n"] == 8 and 380 < sent["max_completion_tokens"] <= 3334 // 8
    bad = client.post("/openai/v1/chat/completions", json={**body, "n": "8"}, headers=auth(tok))
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_n"


def test_gemini_snake_case_generation_config_is_refused(client, token, upstream) -> None:
    """`generation_config` would carry limits the relay does not read or cap: 400, not forwarded."""
    body = {"contents": [{"parts": [{"text": "hi"}]}],
            "generation_config": {"max_output_tokens": 60000, "candidate_count": 8}}
    r = client.post("/geminiv1beta/models/gemini-2.5-flash:generateContent", json=body,
                    headers=auth(token()))
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_generation_config"
    assert upstream.state.received == []
