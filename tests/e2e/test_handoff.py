"""The /login?redirect= hand-off and aipipe.js, in a real browser: a third-party page on another
port signs its user in through the relay; allowed origins get the token at once, others only
after the user approves; invalid targets never."""

from __future__ import annotations

import json
from urllib.parse import quote

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import Apps, Relay, dev_sign_in, wait_ready

pytestmark = pytest.mark.e2e


def app_profile(page: Page) -> dict:
    return page.evaluate("window.aipipeProfile")


def test_allowed_origin_gets_the_token_at_once(relay: Relay, apps: Apps, page: Page) -> None:
    """An operator-allowed origin: login() → sign in → back on the app with the token, and
    the address bar keeps the app's own query and fragment but no aipipe_* parameters."""
    page.goto(apps.allowed + "/app.html?keep=1&x=a%20b#section")
    wait_ready(page)
    assert app_profile(page) == {}
    page.get_by_test_id("app-login").click()
    page.wait_for_url(relay.url + "/login?redirect=*")
    wait_ready(page)
    dev_sign_in(page, "app-user@example.com")

    page.wait_for_url(apps.allowed + "/app.html*")
    wait_ready(page)
    expect(page.get_by_test_id("app-email")).to_have_text("app-user@example.com")
    profile = app_profile(page)
    assert profile["email"] == "app-user@example.com" and profile["token"].count(".") == 2
    assert page.url == apps.allowed + "/app.html?keep=1&x=a%20b#section"
    assert json.loads(page.evaluate("localStorage.getItem('aipipe')"))["token"] == profile["token"]


def test_unapproved_origin_waits_for_approval(relay: Relay, apps: Apps, page: Page) -> None:
    """Any other origin: the page asks "<origin> wants to use your AI Pipe token"; only
    Allow sends the token there."""
    page.goto(apps.unapproved + "/app.html")
    wait_ready(page)
    page.get_by_test_id("app-login").click()
    page.wait_for_url(relay.url + "/login?redirect=*")
    wait_ready(page)
    dev_sign_in(page, "careful@example.com")

    expect(page.get_by_test_id("handoff-message")).to_have_text(
        f"{apps.unapproved} wants to use your AI Pipe token")
    assert page.url.startswith(relay.url)
    page.get_by_test_id("handoff-approve").click()
    page.wait_for_url(apps.unapproved + "/app.html*")
    wait_ready(page)
    expect(page.get_by_test_id("app-email")).to_have_text("careful@example.com")
    assert page.url == apps.unapproved + "/app.html"


def test_denied_origin_gets_nothing(relay: Relay, apps: Apps, page: Page) -> None:
    """Don't allow: the browser stays on the relay, the app never sees a token, and the
    user keeps their own signed-in page."""
    page.goto(relay.url + "/login")
    wait_ready(page)
    dev_sign_in(page, "denier@example.com")
    expect(page.get_by_test_id("token")).to_be_visible()

    target = apps.unapproved + "/app.html"
    page.goto(relay.url + "/login?redirect=" + quote(target, safe=""))
    wait_ready(page)  # a returning user: straight to the question
    expect(page.get_by_test_id("handoff-approve")).to_be_visible()
    page.get_by_test_id("handoff-deny").click()
    expect(page.get_by_test_id("handoff-status")).to_have_text(
        f"Your token was not shared with {apps.unapproved}.")
    expect(page.get_by_test_id("token")).to_be_visible()
    assert page.url.startswith(relay.url)

    page.goto(target)
    wait_ready(page)
    assert app_profile(page) == {}


def test_same_origin_redirect_is_immediate(relay: Relay, page: Page) -> None:
    """The relay's own pages (a relative redirect too) receive the token in the fragment,
    never in the query, without a question."""
    page.goto(relay.url + "/login?redirect=" + quote("/?from=login", safe=""))
    wait_ready(page)
    dev_sign_in(page, "self@example.com")
    page.wait_for_url(relay.url + "/?from=login#aipipe_token=*")
    assert "&aipipe_email=self%40example.com" in page.url
    wait_ready(page)


def test_non_web_redirect_is_never_followed(relay: Relay, page: Page) -> None:
    """A javascript: target is refused: no navigation, no script run, a clear message."""
    page.goto(relay.url + "/login?redirect=" + quote("javascript:alert(document.domain)"))
    wait_ready(page)
    dev_sign_in(page, "safe@example.com")
    expect(page.get_by_test_id("handoff-status")).to_contain_text("is not a web page")
    expect(page.get_by_test_id("token")).to_be_visible()
    assert page.url.startswith(relay.url + "/login")


def test_get_profile_reads_the_query_and_logout_forgets(apps: Apps, page: Page) -> None:
    """getProfile() also takes aipipe_* from the query string, removes only those parameters
    and keeps the rest; logout() forgets the profile on that site."""
    page.goto(apps.unapproved + "/app.html?a=1&aipipe_token=t.o.k&aipipe_email=q%40example.com"
              "&b=2#/route")
    wait_ready(page)
    assert app_profile(page) == {"token": "t.o.k", "email": "q@example.com"}
    assert page.url == apps.unapproved + "/app.html?a=1&b=2#/route"
    page.reload()
    wait_ready(page)
    assert app_profile(page)["email"] == "q@example.com"  # kept in localStorage
    page.get_by_test_id("app-logout").click()
    expect(page.get_by_test_id("app-email")).to_have_text("")
    assert page.evaluate("localStorage.getItem('aipipe')") is None


def test_switch_account_before_approving(relay: Relay, apps: Apps, page: Page) -> None:
    """A returning user asked to share can sign in as someone else first; the app then
    receives the new account's token, after approval."""
    page.goto(relay.url + "/login")
    wait_ready(page)
    dev_sign_in(page, "first@example.com")
    expect(page.get_by_test_id("token")).to_be_visible()

    page.goto(relay.url + "/login?redirect=" + quote(apps.unapproved + "/app.html", safe=""))
    wait_ready(page)
    expect(page.locator("#handoff-who")).to_have_text("Signed in as first@example.com")
    page.get_by_test_id("handoff-switch").click()
    expect(page.locator("#signin-for")).to_have_text(f"Sign in to continue to {apps.unapproved}.")
    dev_sign_in(page, "second@example.com")
    expect(page.locator("#handoff-who")).to_have_text("Signed in as second@example.com")
    page.get_by_test_id("handoff-approve").click()
    page.wait_for_url(apps.unapproved + "/app.html")
    wait_ready(page)
    expect(page.get_by_test_id("app-email")).to_have_text("second@example.com")
