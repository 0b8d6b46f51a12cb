"""/login in a real browser against a real relay: Google sign-in (Google's script replaced by a
local stand-in), dev sign-in, copy, returning user, expired token, sign-out."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import BrowserContext, Page, expect

from tests.e2e.conftest import Relay, dev_sign_in, route_google, wait_ready

pytestmark = pytest.mark.e2e


def stored_profile(page: Page) -> dict | None:
    raw = page.evaluate("localStorage.getItem('aipipe')")
    return json.loads(raw) if raw else None


def test_google_sign_in_gives_a_working_token(relay: Relay, context: BrowserContext,
                                              page: Page) -> None:
    """Signing in with Google on the real page gets a token the relay accepts, shows the
    spend against the budget and snippets with this deployment's URL and the token."""
    credential = relay.google.id_token("Student@Example.com", name="Stu Dent")
    route_google(context, credential)
    exchanges = []
    page.on("request", lambda r: exchanges.append(r) if "/token" in r.url else None)
    page.goto(relay.url + "/login")
    wait_ready(page)
    expect(page.get_by_test_id("dev-email")).to_be_visible()  # --dev shows both ways in
    page.get_by_test_id("google-stand-in").click()

    token = page.get_by_test_id("token")
    expect(token).to_be_visible()
    text = token.inner_text().strip()
    # The credential travels in a POST body, never in a URL (proxies log URLs).
    assert [(r.method, r.url) for r in exchanges] == [("POST", relay.url + "/token")]
    assert json.loads(exchanges[0].post_data) == {"credential": credential}
    assert page.evaluate("window.__gsi.client_id") == relay.google.client_id
    usage = httpx.get(relay.url + "/usage", headers={"Authorization": f"Bearer {text}"})
    assert usage.status_code == 200, usage.text
    assert usage.json()["email"] == "student@example.com"

    expect(page.get_by_test_id("greeting")).to_have_text(
        "Signed in as Stu Dent (student@example.com)")
    expect(page.get_by_test_id("usage-summary")).to_contain_text("$0.00 of $1.00")
    expect(page.get_by_test_id("budget-left")).to_have_text("$1.00 left")
    expect(page.get_by_test_id("who")).to_have_text("student@example.com")  # the header knows
    expect(page.get_by_test_id("snippet-curl")).to_contain_text(relay.url + "/openai/v1/")
    expect(page.get_by_test_id("snippet-curl")).to_contain_text(text)
    assert stored_profile(page) == {"token": text, "email": "student@example.com",
                                    "name": "Stu Dent"}


def test_refused_google_credential_shows_an_error(relay: Relay, context: BrowserContext,
                                                  page: Page) -> None:
    """A credential the relay refuses (wrong audience) leaves the user signed out with the
    relay's reason on the page."""
    route_google(context, relay.google.id_token("x@example.com", aud="someone-else"))
    page.goto(relay.url + "/login")
    wait_ready(page)
    page.get_by_test_id("google-stand-in").click()
    expect(page.get_by_test_id("signin-error")).to_contain_text("Sign-in failed")
    expect(page.get_by_test_id("token")).to_be_hidden()
    assert stored_profile(page) is None


def test_dev_sign_in_copy_and_returning_user(relay: Relay, context: BrowserContext,
                                             page: Page) -> None:
    """Dev sign-in shows the token; Copy puts it on the clipboard; a later visit (and the
    landing page) recognise the user without signing in again."""
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=relay.url)
    page.goto(relay.url + "/login")
    wait_ready(page)
    dev_sign_in(page, "dev@example.com")
    token = page.get_by_test_id("token")
    expect(token).to_be_visible()
    text = token.inner_text().strip()
    page.get_by_test_id("copy-token").click()
    expect(page.locator("#copy-status")).to_be_visible()  # shown only once the copy is done
    expect(page.locator("#copy-status")).to_have_text("Copied to the clipboard.")
    assert page.evaluate("navigator.clipboard.readText()") == text

    page.goto(relay.url + "/login")
    wait_ready(page)
    expect(page.get_by_test_id("token")).to_have_text(text)
    expect(page.get_by_test_id("dev-email")).to_be_hidden()
    page.goto(relay.url + "/")
    wait_ready(page)
    expect(page.get_by_test_id("who")).to_have_text("dev@example.com")


def test_sign_out_forgets_the_token(relay: Relay, page: Page) -> None:
    """Sign-out removes the stored profile and brings back the sign-in choices, also after
    a reload."""
    page.goto(relay.url + "/login")
    wait_ready(page)
    dev_sign_in(page, "leaving@example.com")
    expect(page.get_by_test_id("token")).to_be_visible()
    page.get_by_test_id("signout").click()
    expect(page.get_by_test_id("dev-signin")).to_be_visible()
    expect(page.get_by_test_id("token")).to_be_hidden()
    assert stored_profile(page) is None
    page.reload()
    wait_ready(page)
    expect(page.get_by_test_id("dev-signin")).to_be_visible()


def test_a_saved_token_the_relay_refuses_asks_to_sign_in_again(relay: Relay, page: Page) -> None:
    """A returning user whose stored token no longer works is signed out with a reason,
    not shown a dead token."""
    page.goto(relay.url + "/login")
    wait_ready(page)
    page.evaluate("""localStorage.setItem('aipipe',
        JSON.stringify({token: 'not-a-valid-token', email: 'old@example.com'}))""")
    page.reload()
    wait_ready(page)
    expect(page.get_by_test_id("signin-error")).to_contain_text("no longer works")
    expect(page.get_by_test_id("token")).to_be_hidden()
    assert stored_profile(page) is None


def test_python_snippet_runs_as_pasted(relay: Relay, page: Page, tmp_path: Path) -> None:
    """The Python example on the signed-in page, pasted as is into a script, gets an answer
    from this relay (the --dev demo model) with the user's token."""
    page.goto(relay.url + "/login")
    wait_ready(page)
    dev_sign_in(page, "paster@example.com")
    page.get_by_role("tab", name="Python", exact=True).click()
    code = page.get_by_test_id("snippet-python").locator("code").inner_text()
    script = tmp_path / "snippet.py"
    script.write_text(code)
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                            timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert "[AI Pipe demo model]" in result.stdout
