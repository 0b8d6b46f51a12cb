"""/playground in a real browser against a real relay (`serve --dev`) and the fake upstream:
model picker with prices, streamed multi-turn chat and its cost, Stop, exhausted budget,
expired token, Markdown with highlighted copyable code, show code, and reloads."""

from __future__ import annotations

import importlib.util
import json
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType

import httpx
import pytest
from playwright.sync_api import BrowserContext, Page, Route, expect

from tests.e2e.conftest import Guard, UpstreamRelay, choose_model, wait_ready

pytestmark = pytest.mark.e2e
WEB_PY = Path(__file__).resolve().parents[2] / "web" / "py"
CHAT = "**/v1/chat/completions"  # under /openai and /openrouter


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"webpy_e2e_{name}", WEB_PY / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


money = _load("money")


def slow_upstream(page: Page, chunks: int, delay_ms: int) -> None:
    """Ask the fake upstream (through the relay, which forwards x-fake*) for a slow stream."""
    def add_headers(route: Route) -> None:
        headers = {**route.request.headers, "x-fake": "slow", "x-fake-chunks": str(chunks),
                   "x-fake-delay": str(delay_ms)}
        route.continue_(headers=headers)

    page.route(CHAT, add_headers)


def chat_requests(relay: UpstreamRelay) -> list[dict]:
    return [json.loads(r["body"]) for r in relay.fake.state.received
            if r["path"].endswith("/chat/completions")]


def open_playground(relay: UpstreamRelay, page: Page) -> None:
    page.goto(relay.url + "/playground")
    wait_ready(page)


def test_pick_model_stream_reply_and_cost(upstream_relay: UpstreamRelay, context: BrowserContext,
                                          page: Page) -> None:
    """A student finds a model by searching in the picker with the keyboard, sees its price,
    sends a prompt with a system prompt, temperature and max tokens, watches the reply stream in
    (the cursor at the end of the text, not on a line of its own), and sees its tokens and a
    cost equal to what the relay recorded under the reply — and nowhere else; a second turn
    carries the history; a reload keeps the conversation."""
    relay = upstream_relay
    token = relay.sign_in(context, "student@example.com")
    open_playground(relay, page)
    picker = page.get_by_test_id("model")
    expect(picker).to_have_attribute("data-value", "openai:gpt-4.1-nano")  # a cheap default
    picker.click()
    options = page.get_by_test_id("model-list").get_by_role("option")
    expect(options).to_have_count(8)  # 3 OpenAI chat models + 5 OpenRouter
    expect(page.get_by_test_id("model-list").get_by_role("group")).to_have_count(5)  # OpenAI; 4 labs
    search = page.get_by_test_id("model-search")
    expect(search).to_be_focused()
    search.press_sequentially("4o mini")
    expect(options).to_have_count(2)
    expect(options.first).to_contain_text("$0.15 / $0.60")
    search.press("ArrowDown")  # the second match: OpenRouter's gpt-4o-mini
    expect(search).to_have_attribute("aria-activedescendant", "opt-openrouter-openai-gpt-4o-mini")
    search.press("ArrowUp")
    search.press("Enter")
    expect(page.get_by_test_id("model-search")).to_be_hidden()
    expect(picker).to_have_attribute("data-value", "openai:gpt-4o-mini")
    expect(picker).to_contain_text("gpt-4o-mini")
    expect(page.get_by_test_id("prompt")).to_be_focused()
    expect(page.get_by_test_id("model-price")).to_have_text(
        "OpenAI · $0.15 in · $0.60 out per 1M tokens")
    page.get_by_test_id("system").fill("You are terse.")
    page.get_by_test_id("temperature").fill("0.5")
    page.get_by_test_id("max-tokens").fill("50")

    slow_upstream(page, chunks=10, delay_ms=150)
    page.get_by_test_id("prompt").fill("Say hello to the class")
    page.get_by_test_id("send").click()
    reply = page.get_by_test_id("reply")
    expect(reply).to_contain_text("Hello")
    partial = reply.inner_text()
    expect(page.get_by_test_id("stop")).to_be_enabled()  # still streaming
    expect(page.get_by_test_id("send")).to_be_hidden()  # Stop takes its place
    cursor = page.evaluate("""() => {
        const last = document.querySelector('[data-testid=reply].streaming > :last-child');
        return last ? getComputedStyle(last, '::after').content : null; }""")
    assert cursor == '"▍"'  # after the last paragraph's text, inline
    expect(page.get_by_test_id("cost")).to_contain_text("$")
    final = reply.inner_text()
    assert final.startswith(partial.strip()) and len(final) > len(partial)
    assert final == "Hello from the fake upstream streaming reply number Hello from"
    expect(page.get_by_test_id("stop")).to_be_disabled()

    sent = chat_requests(relay)[-1]
    assert sent["model"] == "gpt-4o-mini" and sent["stream"] is True
    assert sent["temperature"] == 0.5 and sent["max_completion_tokens"] == 50
    assert sent["messages"] == [{"role": "system", "content": "You are terse."},
                                {"role": "user", "content": "Say hello to the class"}]
    recorded = httpx.get(relay.url + "/usage/requests?limit=1",
                         headers={"Authorization": f"Bearer {token}"}).json()["data"][0]
    assert recorded["cost_source"] == "computed" and recorded["output_tokens"] == 10
    expected = money.usd(money.scaled(recorded["cost"]))
    expect(page.get_by_test_id("cost")).to_have_text(expected)
    meta = page.locator(".msg.assistant .meta").last
    expect(meta).to_contain_text("8 in / 10 out tokens")  # 3 + 5 prompt words, 10 chunks
    expect(meta.get_by_test_id("cost")).to_have_count(1)  # the cost is under its reply, once
    # Screen readers are told once that the reply is complete (the stream itself is not live).
    expect(page.locator("#chat-status")).to_have_text(
        "Reply complete. gpt-4o-mini · 8 in / 10 out tokens · " + expected + " (tokens × price)")
    expect(page.get_by_text(expected, exact=True)).to_have_count(1)

    page.unroute(CHAT)
    page.get_by_test_id("prompt").fill("And again")
    page.get_by_test_id("prompt").press("Enter")
    expect(page.locator(".msg.assistant")).to_have_count(2)
    expect(page.get_by_test_id("stop")).to_be_disabled()
    second = chat_requests(relay)[-1]["messages"]
    assert [m["role"] for m in second] == ["system", "user", "assistant", "user"]
    assert second[2]["content"] == final

    page.reload()
    wait_ready(page)
    expect(page.locator(".msg")).to_have_count(4)
    expect(page.get_by_test_id("reply")).to_have_count(1)
    expect(page.locator(".msg.assistant").last.get_by_test_id("reply")).to_have_count(1)
    expect(page.get_by_test_id("system")).to_have_value("You are terse.")
    expect(page.get_by_test_id("model")).to_have_attribute("data-value", "openai:gpt-4o-mini")
    page.get_by_test_id("new-chat").click()
    expect(page.locator(".msg")).to_have_count(0)


def test_stop_aborts_a_long_reply(upstream_relay: UpstreamRelay, context: BrowserContext,
                                  page: Page) -> None:
    """Stop aborts a long streamed reply: the text stops growing, the page is ready for the
    next prompt, and the cost shown is the estimate the relay recorded for the aborted call."""
    relay = upstream_relay
    token = relay.sign_in(context, "stopper@example.com")
    open_playground(relay, page)
    choose_model(page, "openrouter:openai/gpt-4.1-nano")
    slow_upstream(page, chunks=60, delay_ms=100)
    page.get_by_test_id("prompt").fill("Tell me a very long story")
    page.get_by_test_id("send").click()
    reply = page.get_by_test_id("reply")
    expect(reply).to_contain_text("fake")
    page.get_by_test_id("stop").click()
    expect(page.get_by_test_id("send")).to_be_enabled()
    expect(page.get_by_test_id("stop")).to_be_disabled()
    stopped_text = reply.inner_text()
    assert 3 <= len(stopped_text.split()) < 60
    page.wait_for_timeout(500)
    assert reply.inner_text() == stopped_text  # nothing more arrives
    expect(page.locator(".msg.assistant .meta").last).to_contain_text("stopped")
    expect(page.get_by_test_id("cost")).to_contain_text("$", timeout=8000)
    rows = httpx.get(relay.url + "/usage/requests?limit=1",
                     headers={"Authorization": f"Bearer {token}"}).json()["data"]
    assert rows[0]["outcome"] == "aborted" and rows[0]["streamed"] is True
    assert page.get_by_test_id("cost").inner_text() == money.usd(
        money.scaled(rows[0]["cost"]))
    expect(page.locator(".msg.assistant .meta .source").last).to_have_text("estimated by the relay")


def test_exhausted_budget_is_explained(upstream_relay: UpstreamRelay, context: BrowserContext,
                                       page: Page) -> None:
    """With the budget used up, sending explains it (429 insufficient_quota), points to the
    usage page, keeps the prompt for later, and nothing reaches the provider."""
    relay = upstream_relay
    email = "spent@tiny.example"
    relay.set_day_cost(email, datetime.now(UTC).date().isoformat(), "0.02")
    relay.sign_in(context, email)
    open_playground(relay, page)
    before = len(chat_requests(relay))
    choose_model(page, "openai:gpt-4.1-nano")
    page.get_by_test_id("prompt").fill("Am I out of money?")
    page.get_by_test_id("send").click()
    notice = page.get_by_test_id("notice")
    expect(notice).to_be_visible()
    expect(notice).to_contain_text("Your AI Pipe budget is used up")
    expect(notice).to_contain_text("$0.0200 / $0.0100 in 7 days")
    expect(page.get_by_test_id("notice-link")).to_have_attribute("href", "/dashboard")
    expect(page.get_by_test_id("prompt")).to_have_value("Am I out of money?")
    expect(page.locator(".msg")).to_have_count(0)
    assert len(chat_requests(relay)) == before
    expect(page.get_by_test_id("budget-left")).to_have_text("$0.00 of $0.01 left")
    expect(page.locator("#budget-meter.full")).to_have_count(1)


def test_expired_token_says_sign_in_again(upstream_relay: UpstreamRelay, context: BrowserContext,
                                          page: Page) -> None:
    """A stored token the relay no longer accepts gets a clear "sign in again" with a link
    back to this page, not a silent failure."""
    bad = upstream_relay.token("gone@example.com")[:-4] + "AAAA"  # a signature that fails
    profile = json.dumps({"token": bad, "email": "gone@example.com"})
    context.add_init_script(f"localStorage.setItem('aipipe', {json.dumps(profile)})")
    open_playground(upstream_relay, page)
    notice = page.get_by_test_id("notice")
    expect(notice).to_contain_text("expired or was revoked")
    expect(page.get_by_test_id("notice-link")).to_have_attribute(
        "href", "/login?redirect=/playground")


def test_signed_out_visitor_is_sent_to_sign_in(upstream_relay: UpstreamRelay, page: Page) -> None:
    """Without a stored profile the page asks the visitor to sign in and returns here after."""
    open_playground(upstream_relay, page)
    expect(page.get_by_test_id("signin-needed")).to_be_visible()
    expect(page.get_by_test_id("signin-needed").locator("a")).to_have_attribute(
        "href", "/login?redirect=/playground")
    expect(page.get_by_test_id("prompt")).to_be_hidden()


MARKDOWN = ("Here is **code**:\n\n```python\ndef add(a, b):\n    return a + b\n```\n\n"
            "<img src=x onerror=\"window.__xss = 1\"> done")


def test_markdown_code_is_highlighted_copyable_and_safe(
        upstream_relay: UpstreamRelay, context: BrowserContext, page: Page, guard: Guard) -> None:
    """A Markdown reply is rendered with the locally served libraries: bold text, a code block
    highlighted by highlight.js with a working Copy button, and raw HTML in the reply is
    sanitised (DOMPurify drops the handler; the page's CSP would block it anyway)."""
    relay = upstream_relay
    relay.sign_in(context, "markdown@example.com")
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=relay.url)
    chunks = [MARKDOWN[i:i + 7] for i in range(0, len(MARKDOWN), 7)]
    events = "".join("data: " + json.dumps({"choices": [{"index": 0, "delta": {"content": c}}]})
                     + "\n\n" for c in chunks)
    usage = {"prompt_tokens": 3, "completion_tokens": 30, "total_tokens": 33}
    events += "data: " + json.dumps({"choices": [], "usage": usage}) + "\n\ndata: [DONE]\n\n"
    page.route(CHAT, lambda route: route.fulfill(
        status=200, headers={"content-type": "text/event-stream"}, body=events))
    open_playground(relay, page)
    choose_model(page, "openai:gpt-4o-mini")
    page.get_by_test_id("prompt").fill("Show me code")
    page.get_by_test_id("send").click()
    reply = page.get_by_test_id("reply")
    expect(reply.locator("strong")).to_have_text("code")
    code = reply.locator("pre code.hljs")
    expect(code).to_contain_text("def add(a, b):")
    expect(code.locator(".hljs-keyword").first).to_have_text("def")
    expect(reply.locator("pre .codelang")).to_have_text("python")
    expect(reply.locator("img[onerror]")).to_have_count(0)
    assert page.evaluate("window.__xss") is None
    # Chromium reports the handler it saw while DOMPurify parsed the reply (inert, blocked by
    # the CSP): expected here, and the only error allowed.
    blocked = [e for e in guard.errors if "inline event handler" in e]
    assert blocked
    guard.errors[:] = [e for e in guard.errors if e not in blocked]
    reply.locator("pre button.copy").click()
    expect(reply.locator("pre button.copy")).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == "def add(a, b):\n    return a + b\n"
    # 3 x $0.15 + 30 x $0.60 per 1M tokens = $0.00001845
    expect(page.get_by_test_id("cost")).to_have_text("$0.000018")


def test_show_code_gives_the_same_request(upstream_relay: UpstreamRelay, context: BrowserContext,
                                          page: Page) -> None:
    """"Show code" gives the request the page would send — model, system prompt, prompt,
    settings — as curl, Python and JavaScript, pointing at this relay."""
    relay = upstream_relay
    relay.sign_in(context, "coder@example.com")
    open_playground(relay, page)
    choose_model(page, "openrouter:anthropic/claude-3.5-haiku")
    page.get_by_test_id("system").fill("Be brief.")
    page.get_by_test_id("max-tokens").fill("20")
    page.get_by_test_id("prompt").fill("What's 2+2?")
    page.get_by_test_id("show-code").click()
    expect(page.get_by_test_id("code-panel")).to_be_visible()
    curl = page.get_by_test_id("snippet-code-curl")
    expect(curl).to_contain_text(relay.url + "/openrouter/v1/chat/completions")
    expect(curl).to_contain_text('"model": "anthropic/claude-3.5-haiku"')
    expect(curl).to_contain_text('"max_tokens": 20')
    expect(curl).to_contain_text("What'\"'\"'s 2+2?")  # shell-quoted apostrophe
    page.get_by_role("tab", name="Python", exact=True).click()
    python = page.get_by_test_id("snippet-code-python")
    expect(python).to_contain_text(f'base_url="{relay.url}/openrouter/v1"')
    expect(python).to_contain_text('"content": "Be brief."')
    page.get_by_role("tab", name="Python", exact=True).press("ArrowRight")  # tabs by keyboard
    expect(page.get_by_role("tab", name="JavaScript", exact=True)).to_be_focused()
    expect(page.get_by_test_id("snippet-code-js")).to_contain_text(relay.url + "/aipipe.js")
    page.keyboard.press("Escape")
    expect(page.get_by_test_id("code-panel")).to_be_hidden()
