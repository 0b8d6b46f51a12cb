"""/dashboard in a real browser against a real relay and the fake upstream: spend against the
limit, when budget frees up, the Vega-Lite chart and the recent requests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from playwright.sync_api import BrowserContext, Page, expect

from tests.e2e.conftest import UpstreamRelay, wait_ready

pytestmark = pytest.mark.e2e


def chat(relay: UpstreamRelay, token: str, provider: str, model: str) -> None:
    """One non-streamed call through the relay (recorded in the ledger with its cost)."""
    response = httpx.post(f"{relay.url}/{provider}/v1/chat/completions",
                          headers={"Authorization": f"Bearer {token}"},
                          json={"model": model, "messages": [{"role": "user", "content": "Hi"}]},
                          timeout=10)
    assert response.status_code == 200, response.text


def test_dashboard_shows_spend_chart_and_requests(upstream_relay: UpstreamRelay,
                                                  context: BrowserContext, page: Page) -> None:
    """After two calls the dashboard shows the spend the relay reports against the $1 limit,
    when that spend leaves the window, a chart with one bar segment per model, and both
    requests with their tokens, cost and where the cost came from."""
    relay = upstream_relay
    token = relay.sign_in(context, "viewer@example.com")
    chat(relay, token, "openai", "gpt-4o-mini")
    chat(relay, token, "openrouter", "anthropic/claude-3.5-haiku")
    usage = httpx.get(relay.url + "/usage", headers={"Authorization": f"Bearer {token}"}).json()
    assert usage["cost"] > 0

    page.goto(relay.url + "/dashboard")
    wait_ready(page)
    expect(page.get_by_test_id("limit")).to_have_text("$1.00")
    spend = page.get_by_test_id("spend").inner_text()
    assert spend.startswith("$0.0000") and spend != "$0.00"  # tiny, but shown, not rounded away
    expect(page.get_by_test_id("remaining")).to_have_text("$0.9999")  # never overstated
    today = datetime.now(UTC).date()
    back = today + timedelta(days=7)
    expect(page.get_by_test_id("frees-up")).to_contain_text(
        f"frees up on {back.strftime('%b')} {back.day} (UTC)")

    chart = page.get_by_test_id("usage-chart")
    expect(chart.locator("svg.marks")).to_have_count(1)
    bars = chart.locator("svg g.mark-rect path")
    expect(bars).to_have_count(2)  # today's bar, one segment per model
    axis = chart.locator("svg .role-axis-label text[text-anchor=middle]")  # the dates
    expect(axis).to_have_count(7)  # every day of the window, as "Mar 5", not rotated ISO dates
    assert axis.last.text_content() == f"{today.strftime('%b')} {today.day}"
    assert "rotate" not in (axis.last.get_attribute("transform") or "")
    legend = page.locator("#usage-legend")
    expect(legend).to_contain_text("gpt-4o-mini")
    expect(legend).to_contain_text("anthropic/claude-3.5-haiku")
    assert chart.bounding_box()["width"] > 0.7 * page.locator(".chart-card").bounding_box()["width"]
    expect(chart.locator("details, summary")).to_have_count(0)  # no Vega "…" menu
    chart.locator("svg g.mark-rect path").first.hover()
    tip = page.locator("#chart-tip")
    expect(tip).to_be_visible()
    expect(tip).to_contain_text("Cost")
    expect(tip).to_contain_text(f"{today.strftime('%b')} {today.day}")

    table = page.get_by_test_id("requests")
    rows = table.locator("tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.nth(0)).to_contain_text("anthropic/claude-3.5-haiku (openrouter)")
    expect(rows.nth(0)).to_contain_text("reported by the provider")
    expect(rows.nth(1)).to_contain_text("gpt-4o-mini (openai)")
    expect(rows.nth(1)).to_contain_text("tokens × price table")
    expect(rows.nth(1)).to_contain_text("1 / 5")  # one prompt word, five reply chunks


def test_used_up_budget_says_when_it_frees_up(upstream_relay: UpstreamRelay,
                                             context: BrowserContext, page: Page) -> None:
    """A budget used up three days ago shows as full, and the page names the UTC date it
    frees up: that day plus the 7-day window."""
    relay = upstream_relay
    email = "overspent@tiny.example"
    spent_on = datetime.now(UTC).date() - timedelta(days=3)
    relay.set_day_cost(email, spent_on.isoformat(), "0.05")
    relay.sign_in(context, email)
    page.goto(relay.url + "/dashboard")
    wait_ready(page)
    expect(page.get_by_test_id("spend")).to_have_text("$0.05")
    expect(page.get_by_test_id("limit")).to_have_text("$0.01")
    expect(page.get_by_test_id("remaining")).to_have_text("$0.00")
    expect(page.locator("#meter.full")).to_have_count(1)
    back = spent_on + timedelta(days=7)
    expect(page.get_by_test_id("frees-up")).to_have_text(
        f"Your budget is used up. It frees up on {back.strftime('%b')} {back.day} (UTC), when the "
        f"$0.05 spent up to {spent_on.strftime('%b')} {spent_on.day} leaves the 7-day window.")
    # The admin's figure has no requests behind it: the chart shows it as "(other)".
    expect(page.locator("#usage-legend")).to_contain_text("(other)")
    expect(page.locator("#chart-note")).to_contain_text("(other) is cost your recent requests")
    expect(page.get_by_test_id("requests").locator("tbody tr")).to_have_count(0)


def test_a_new_user_gets_a_friendly_empty_state(upstream_relay: UpstreamRelay,
                                               context: BrowserContext, page: Page) -> None:
    """Nothing spent yet: no empty $0 axis but a sentence and the way to the playground; the
    free model-list calls the playground made are left out of the requests (and counted)."""
    relay = upstream_relay
    token = relay.sign_in(context, "newcomer@example.com")
    listed = httpx.get(relay.url + "/openai/v1/models", headers={"Authorization": f"Bearer {token}"})
    assert listed.status_code == 200
    page.goto(relay.url + "/dashboard")
    wait_ready(page)
    chart = page.get_by_test_id("usage-chart")
    expect(chart.locator("svg.marks")).to_have_count(0)
    expect(chart).to_contain_text("No spend yet")
    expect(chart.get_by_role("link", name="Try a model in the playground")).to_have_attribute(
        "href", "/playground")
    expect(page.get_by_test_id("requests").locator("tbody tr")).to_have_count(0)
    expect(page.locator("#requests-note")).to_contain_text("1 free model-list call not shown")
    page.locator("#show-free").check()
    expect(page.get_by_test_id("requests").locator("tbody tr")).to_have_count(1)


def test_skeletons_hold_the_place_while_loading(upstream_relay: UpstreamRelay,
                                                context: BrowserContext, page: Page) -> None:
    """While /usage is slow the figures and the chart show loading placeholders, not a blank
    page; then the real figures replace them."""
    relay = upstream_relay
    relay.sign_in(context, "patient@example.com")
    held: list = []
    page.route("**/usage", lambda route: held.append(route))  # answered once looked at
    page.goto(relay.url + "/dashboard")
    for _ in range(100):
        if held:
            break
        page.wait_for_timeout(100)
    assert held, "the page never asked for /usage"
    expect(page.get_by_test_id("spend").locator(".skeleton")).to_be_visible()
    expect(page.get_by_test_id("usage-chart").locator(".skeleton")).to_be_visible()
    expect(page.locator("body[data-ready='true']")).to_have_count(0)
    held[0].continue_()
    wait_ready(page)
    expect(page.get_by_test_id("spend")).to_have_text("$0.00")
    expect(page.locator(".skeleton")).to_have_count(0)


def test_signed_out_visitor_is_asked_to_sign_in(upstream_relay: UpstreamRelay,
                                               page: Page) -> None:
    """Without a profile the dashboard offers sign-in (returning here) and shows no figures."""
    page.goto(upstream_relay.url + "/dashboard")
    wait_ready(page)
    expect(page.get_by_test_id("signin-needed")).to_be_visible()
    expect(page.get_by_test_id("signin-needed").locator("a")).to_have_attribute(
        "href", "/login?redirect=/dashboard")
    expect(page.get_by_test_id("spend")).to_be_hidden()
