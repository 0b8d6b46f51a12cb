"""/playground with Claude, in a real browser: a relay with ANTHROPIC_API_KEY lists Anthropic's
models (priced by family), streams a reply through `/anthropic/v1/messages` from the fake
Anthropic's real event sequence, shows the cost the relay recorded, shows the request as
Anthropic-style code, and reports a mid-stream `error` event. (Without the key — the
`upstream_relay` of test_playground.py — the picker has no Anthropic group: it counts 8 models.)
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from urllib.parse import unquote

import httpx
import pytest
from playwright.sync_api import BrowserContext, Page, Route, expect

from testkit.fakes.protocol import DEFAULT_KEYS
from tests.e2e.conftest import UpstreamRelay, choose_model, serve_upstream_relay, wait_ready
from tests.e2e.test_playground import money

pytestmark = pytest.mark.e2e
SONNET = "anthropic:claude-sonnet-4-5-20250929"
MESSAGES = "**/anthropic/v1/messages"


@pytest.fixture(scope="module")
def claude_relay(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UpstreamRelay]:
    """`serve --dev` with an Anthropic key (and OpenAI's) on the fake upstream."""
    with serve_upstream_relay(tmp_path_factory.mktemp("claude-relay"),
                              ("openai", "anthropic")) as relay:
        yield relay


def sent_messages(relay: UpstreamRelay) -> list[dict]:
    return [r for r in relay.fake.state.received if r["path"].endswith("/v1/messages")]


def fake_behaviour(page: Page, behaviour: str) -> None:
    """Ask the fake Anthropic (through the relay, which forwards x-fake*) for a behaviour."""
    def add_header(route: Route) -> None:
        route.continue_(headers={**route.request.headers, "x-fake": behaviour})

    page.route(MESSAGES, add_header)


def test_claude_models_stream_a_reply_and_its_cost(claude_relay: UpstreamRelay,
                                                    context: BrowserContext, page: Page) -> None:
    """The picker has an Anthropic group with Claude's display names and family prices; a reply
    streams from the Messages API (system prompt at the top level, max_tokens sent, no
    temperature: the field says Claude sets its own) and its cost is the one recorded."""
    relay = claude_relay
    token = relay.sign_in(context, "claude-fan@example.com")
    page.goto(relay.url + "/playground")
    wait_ready(page)
    page.get_by_test_id("model").click()
    listbox = page.get_by_test_id("model-list")
    group = listbox.get_by_role("group", name="Anthropic")
    expect(group.get_by_role("option")).to_have_count(3)
    sonnet = listbox.locator(f'[role="option"][data-value="{SONNET}"]')
    expect(sonnet).to_contain_text("$3.00 / $15.00")
    page.get_by_test_id("model-search").fill("claude haiku")
    expect(listbox.get_by_role("option")).to_have_count(1)
    page.keyboard.press("Escape")

    choose_model(page, SONNET)
    expect(page.get_by_test_id("model-price")).to_have_text(
        "Anthropic · $3.00 in · $15.00 out per 1M tokens")
    expect(page.get_by_test_id("temperature")).to_be_disabled()
    expect(page.get_by_test_id("temperature-note")).to_be_visible()
    page.get_by_test_id("system").fill("You are terse.")
    page.get_by_test_id("max-tokens").fill("64")
    page.get_by_test_id("prompt").fill("Say hello to the class")
    page.get_by_test_id("send").click()
    reply = page.get_by_test_id("reply")
    expect(reply).to_have_text("Hello from the fake upstream")
    expect(page.get_by_test_id("cost")).to_contain_text("$")

    sent = sent_messages(relay)[-1]
    assert sent["headers"]["x-api-key"] == DEFAULT_KEYS["anthropic"]  # the operator's key
    assert token not in str(sent)  # the AI Pipe token never reaches the provider
    assert sent["headers"]["anthropic-version"] == "2023-06-01"
    body = json.loads(sent["body"])
    assert body["system"] == "You are terse." and body["max_tokens"] == 64
    assert body["messages"] == [{"role": "user", "content": "Say hello to the class"}]
    assert body["stream"] is True and "temperature" not in body

    recorded = httpx.get(relay.url + "/usage/requests?limit=1",
                         headers={"Authorization": f"Bearer {token}"}).json()["data"][0]
    assert (recorded["provider"], recorded["model"]) == ("anthropic", SONNET.split(":")[1])
    assert recorded["cost_source"] == "computed" and recorded["output_tokens"] == 5
    expected = money.usd(money.scaled(recorded["cost"]))
    expect(page.get_by_test_id("cost")).to_have_text(expected)
    expect(page.locator(".msg.assistant .meta").last).to_contain_text("in / 5 out tokens")

    # Back to an OpenAI model: the temperature field is offered again.
    choose_model(page, "openai:gpt-4o-mini")
    expect(page.get_by_test_id("temperature")).to_be_enabled()
    expect(page.get_by_test_id("temperature-note")).to_be_hidden()


def test_claude_show_code_and_a_mid_stream_error(claude_relay: UpstreamRelay,
                                                 context: BrowserContext, page: Page) -> None:
    """"Show code" for Claude is Anthropic's: x-api-key and anthropic-version in curl, the
    anthropic SDK in Python, and a scratchpad link whose code names the Claude model;
    an `error` event mid-stream (Anthropic's overload) is shown, and the reply keeps its text."""
    relay = claude_relay
    relay.sign_in(context, "claude-coder@example.com")
    page.goto(relay.url + "/playground")
    wait_ready(page)
    choose_model(page, SONNET)
    page.get_by_test_id("prompt").fill("What's 2+2?")
    page.get_by_test_id("show-code").click()
    curl = page.get_by_test_id("snippet-code-curl")
    expect(curl).to_contain_text(relay.url + "/anthropic/v1/messages")
    expect(curl).to_contain_text("x-api-key: $AIPIPE_TOKEN")
    expect(curl).to_contain_text("anthropic-version: 2023-06-01")
    link = page.get_by_test_id("open-scratchpad")
    expect(link).to_be_visible()
    code = unquote(link.get_attribute("href").split("#code=", 1)[1])
    assert 'model="claude-sonnet-4-5-20250929"' in code and "max_tokens=8192" in code
    page.get_by_role("tab", name="Python", exact=True).click()
    python = page.get_by_test_id("snippet-code-python")
    expect(python).to_contain_text("import anthropic")
    expect(python).to_contain_text(f'base_url="{relay.url}/anthropic"')
    page.keyboard.press("Escape")

    fake_behaviour(page, "streamerror")
    page.get_by_test_id("send").click()
    notice = page.get_by_test_id("notice")
    expect(notice).to_contain_text("The reply broke off: Overloaded")
    expect(page.get_by_test_id("reply")).to_have_text("Hello from the fake upstream")
    expect(page.get_by_test_id("send")).to_be_enabled()


def test_a_spent_budget_is_explained_for_claude_too(claude_relay: UpstreamRelay,
                                                    context: BrowserContext, page: Page) -> None:
    """With the budget used up, Claude's models are still listed, and sending explains the
    budget, keeps the prompt, and reaches nothing upstream."""
    relay = claude_relay
    email = "spent-claude@tiny.example"
    relay.set_day_cost(email, datetime.now(UTC).date().isoformat(), "0.02")
    relay.sign_in(context, email)
    page.goto(relay.url + "/playground")
    wait_ready(page)
    before = len(sent_messages(relay))
    choose_model(page, SONNET)  # Anthropic's model list is free: it is offered as usual
    page.get_by_test_id("prompt").fill("Am I out of money?")
    page.get_by_test_id("send").click()
    notice = page.get_by_test_id("notice")
    expect(notice).to_contain_text("Your AI Pipe budget is used up")
    expect(page.get_by_test_id("notice-link")).to_have_attribute("href", "/dashboard")
    expect(page.get_by_test_id("prompt")).to_have_value("Am I out of money?")
    assert len(sent_messages(relay)) == before
