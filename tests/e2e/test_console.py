"""A first-time `aipipe serve --dev` with no keys, as a student meets it: every page logs
nothing red in the browser's console — no page error, and not even a failed request (the
playground used to ask /openrouter/v1/models, which has no key here, and log a 503 on every
visit). The header, the theme and the keyboard work the same way on every page."""

from __future__ import annotations

import json

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.e2e.conftest import Guard, guarded_context, wait_ready

pytestmark = pytest.mark.e2e
PAGES = ("/", "/login", "/playground", "/scratchpad", "/dashboard", "/admin")
PYTHON_START = 120_000  # ms: the scratchpad's Pyodide, cold, on a busy 2-core machine


def signed_in(browser: Browser, guard: Guard, url: str, email: str | None, **options: object):
    context = guarded_context(browser, guard, **options)
    if email:
        token = httpx.post(url + "/dev-login", json={"email": email}, timeout=10).json()["token"]
        profile = json.dumps({"token": token, "email": email})
        context.add_init_script(f"if (location.origin !== 'null') "
                                f"localStorage.setItem('aipipe', {json.dumps(profile)})")
    return context


def test_a_keyless_dev_relay_logs_no_error(dev_relay: str, browser: Browser, guard: Guard) -> None:
    """Signed out, as a student (who also chats with the demo model in the playground and runs a
    cell that calls it in the scratchpad) and as the dev admin: no console error of any kind on
    any page, and no request to a provider without a key."""
    errors: list[str] = []
    asked: list[str] = []
    for email in (None, "student@example.com", "admin@example.com"):
        context = signed_in(browser, guard, dev_relay, email)
        page = context.new_page()
        page.on("console", lambda m, p=page: m.type == "error" and errors.append(f"{m.text} ({p.url})"))
        page.on("request", lambda r: asked.append(r.url))
        for path in PAGES:
            page.goto(dev_relay + path)
            wait_ready(page)
            if email == "student@example.com" and path == "/playground":
                expect(page.get_by_test_id("model")).to_have_attribute("data-value",
                                                                        "openai:aipipe-demo")
                page.get_by_test_id("prompt").fill("Hello")
                page.get_by_test_id("prompt").press("Enter")
                expect(page.get_by_test_id("cost")).to_contain_text("$")
                expect(page.get_by_test_id("reply")).to_contain_text("[AI Pipe demo model]")
            if email == "student@example.com" and path == "/scratchpad":
                page.get_by_test_id("code").fill(
                    "import aipipe\nfor piece in aipipe.stream('Hello'):\n    print(piece, end='')")
                page.get_by_test_id("code").press("Control+Enter")
                expect(page.get_by_test_id("run-cost")).to_contain_text("1 call · $",
                                                                        timeout=PYTHON_START)
                expect(page.get_by_test_id("output")).to_contain_text("[AI Pipe demo model]")
            page.wait_for_timeout(300)  # anything still loading would show up now
        context.close()
    guard.check()
    assert errors == []
    assert [url for url in asked if "/openrouter/" in url or "/geminiv1beta/" in url] == []


def test_the_header_knows_who_is_signed_in_before_python_starts(
        dev_relay: str, browser: Browser, guard: Guard) -> None:
    """boot.js shows the signed-in email (not "Sign in"), the Admin link for an admin seen
    before, and the chosen theme before the page's Python has run — no flash of the wrong state;
    Python then writes the same. Students never see the Admin link."""
    context = signed_in(browser, guard, dev_relay, "admin@example.com")
    page = context.new_page()
    page.goto(dev_relay + "/playground")
    wait_ready(page)
    expect(page.get_by_test_id("who")).to_have_text("admin@example.com")
    expect(page.get_by_role("link", name="Admin", exact=True)).to_be_visible()  # from /usage
    page.get_by_test_id("theme-toggle").click()
    expect(page.locator("html[data-theme=dark]")).to_have_count(1)
    expect(page.get_by_test_id("theme-toggle")).to_have_attribute("aria-pressed", "true")
    # Next page, with its Python held back (its files never arrive): what shows is boot.js's.
    held = context.new_page()
    held.route("**/static/py/**", lambda route: None)
    held.goto(dev_relay + "/dashboard", wait_until="domcontentloaded")
    held.wait_for_timeout(300)
    first = held.evaluate("""() => ({
        ready: document.body.dataset.ready || "",
        who: getComputedStyle(document.querySelector("#who"), "::before").content,
        whoText: document.querySelector("#who").textContent,
        signIn: getComputedStyle(document.querySelector(".signin-label")).display,
        admin: getComputedStyle(document.querySelector(".admin-only")).display !== "none",
        theme: document.documentElement.dataset.theme})""")
    assert first == {"ready": "", "who": '"admin@example.com"', "whoText": "", "signIn": "none",
                     "admin": True, "theme": "dark"}
    held.close()
    page.goto(dev_relay + "/dashboard")
    wait_ready(page)
    expect(page.get_by_role("link", name="Usage", exact=True)).to_have_attribute("aria-current", "page")
    context.close()

    student = signed_in(browser, guard, dev_relay, "fresh@example.com", color_scheme="dark")
    page = student.new_page()
    page.goto(dev_relay + "/")
    wait_ready(page)
    expect(page.locator("html[data-theme=dark]")).to_have_count(1)  # the system's choice
    expect(page.get_by_role("link", name="Admin", exact=True)).to_be_hidden()
    expect(page.get_by_test_id("who")).to_have_text("fresh@example.com")
    expect(page.get_by_test_id("cta-token")).to_have_text("Your token and budget")
    expect(page.locator("#step-signin")).to_contain_text("You are signed in")
    expect(page.get_by_test_id("home-left")).to_have_text("$1.00 of $1.00")
    student.close()
    guard.check()


def test_playground_by_keyboard_and_on_a_phone(dev_relay: str, browser: Browser,
                                               guard: Guard) -> None:
    """Ctrl+K opens the model picker, Escape closes it and gives focus back; on a phone the chat
    comes first (right under the header), the settings open over it and Escape closes them;
    a suggestion fills the prompt."""
    context = signed_in(browser, guard, dev_relay, "thumbs@example.com",
                        viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    page: Page = context.new_page()
    page.goto(dev_relay + "/playground")
    wait_ready(page)
    assert page.locator("#messages").bounding_box()["y"] < 200  # the chat, not the settings
    expect(page.locator("#settings")).to_be_hidden()
    page.keyboard.press("Control+k")
    expect(page.get_by_test_id("model-search")).to_be_focused()
    page.keyboard.press("Escape")
    expect(page.get_by_test_id("model-search")).to_be_hidden()
    expect(page.get_by_test_id("model")).to_be_focused()
    page.get_by_test_id("settings-toggle").click()
    expect(page.get_by_test_id("system")).to_be_visible()
    expect(page.get_by_test_id("settings-toggle")).to_have_attribute("aria-expanded", "true")
    page.keyboard.press("Escape")
    expect(page.get_by_test_id("system")).to_be_hidden()
    page.get_by_role("button", name="What is a token?").click()
    expect(page.get_by_test_id("prompt")).to_have_value(
        "Explain what a token is in an LLM, in two sentences.")
    expect(page.get_by_test_id("prompt")).to_be_focused()
    context.close()
    guard.check()
