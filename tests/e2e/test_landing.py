"""The landing page in a real browser: this deployment's address, budget and examples."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import Relay, wait_ready

pytestmark = pytest.mark.e2e


def test_landing_page_describes_this_deployment(relay: Relay, page: Page) -> None:
    """/ shows the relay's own base URL, the default budget from the policy file, and
    snippets that use that URL with $AIPIPE_TOKEN; every tab can be opened."""
    page.goto(relay.url + "/")
    wait_ready(page)
    expect(page.locator(".base-url").first).to_have_text(relay.url)
    expect(page.get_by_test_id("budget")).to_have_text("$0.10 per user over 7 days")
    expect(page.get_by_test_id("snippet-curl")).to_contain_text(
        f"curl {relay.url}/openai/v1/chat/completions")
    expect(page.get_by_test_id("snippet-curl")).to_contain_text("$AIPIPE_TOKEN")
    expect(page.get_by_test_id("snippet-python")).to_be_hidden()
    page.get_by_role("tab", name="Python", exact=True).click()
    expect(page.get_by_test_id("snippet-python")).to_contain_text(
        f'base_url="{relay.url}/openai/v1"')
    expect(page.get_by_test_id("snippet-curl")).to_be_hidden()
    expect(page.get_by_test_id("who")).to_have_text("")
    expect(page.get_by_test_id("demo-note")).to_contain_text("aipipe-demo")


@pytest.mark.parametrize("path", ["/playground", "/dashboard", "/admin"])
def test_every_page_starts_its_python(relay: Relay, page: Page, path: str) -> None:
    """Every page the relay serves reaches data-ready (SPEC §10) with no page errors."""
    page.goto(relay.url + path)
    wait_ready(page)
