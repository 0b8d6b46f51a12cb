"""/admin in a real browser against a real relay and the fake upstream: users with search and
sort, the total-spend chart, minting a token, overwriting a day's cost, the export download,
and a clear refusal for non-admins."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest
from playwright.sync_api import BrowserContext, Page, expect

from tests.e2e.conftest import ADMIN, UpstreamRelay, serve_upstream_relay, wait_ready

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def admin_relay(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UpstreamRelay]:
    """A relay of its own: the counts and charts here are of this file's users only (other
    files' calls would otherwise land in the same ledger, depending on the order tests run in)."""
    with serve_upstream_relay(tmp_path_factory.mktemp("admin-relay"),
                              ("openai", "openrouter")) as relay:
        yield relay


def open_admin(relay: UpstreamRelay, context: BrowserContext, page: Page) -> None:
    relay.sign_in(context, ADMIN)
    page.goto(relay.url + "/admin")
    wait_ready(page)


def emails_in_table(page: Page) -> list[str]:
    return page.locator("[data-testid=users] tbody tr").evaluate_all(
        "rows => rows.map(r => r.dataset.email)")


def test_users_search_sort_and_spend_chart(admin_relay: UpstreamRelay,
                                           context: BrowserContext, page: Page) -> None:
    """An admin sees every user with spend, limit and request counts, narrows them by search,
    sorts by a column (both ways), and sees total spend by day split by provider or model."""
    relay = admin_relay
    relay.chat("big.spender@school.example", "openrouter", "anthropic/claude-3.5-haiku")
    relay.chat("big.spender@school.example", "openrouter", "anthropic/claude-3.5-haiku")
    relay.chat("small.spender@school.example", "openai", "gpt-4.1-nano")
    asked: list[str] = []
    page.on("request", lambda request: asked.append(request.url))
    open_admin(relay, context, page)

    big = page.locator("[data-testid=users] tr[data-email='big.spender@school.example']")
    expect(big).to_contain_text("$1.00")  # limit
    expect(big.locator("td").last).to_have_text("user")  # the Role column is never blank
    expect(big.locator("td").nth(4)).to_have_text("2")  # requests
    page.get_by_test_id("user-search").fill("school")
    expect(page.get_by_test_id("user-count")).to_contain_text("2 of")
    # Default sort: spend, highest first; clicking "Spend" flips it.
    assert emails_in_table(page) == ["big.spender@school.example", "small.spender@school.example"]
    page.locator("[data-testid=users] th button[data-sort=spend]").click()
    assert emails_in_table(page) == ["small.spender@school.example", "big.spender@school.example"]
    page.locator("[data-testid=users] th button[data-sort=email]").click()
    assert emails_in_table(page) == ["big.spender@school.example", "small.spender@school.example"]
    expect(page.locator("[data-testid=users] th[aria-sort=ascending]")).to_have_text("Email")

    expect(page.get_by_test_id("admin-chart").locator("svg.marks")).to_have_count(1)
    legend = page.locator("#admin-legend")
    expect(legend).to_contain_text("openrouter")
    expect(legend).to_contain_text("openai")
    spent = httpx.get(relay.url + "/admin/spend?group=provider",
                      headers={"Authorization": f"Bearer {relay.token(ADMIN)}"}).json()["data"]
    count = sum(item["requests"] for item in spent)
    expect(page.locator("#chart-note")).to_contain_text(f"{count} requests in the ledger")
    expect(page.get_by_test_id("stat-requests")).to_have_text(str(count))
    # At a glance: the biggest spender and the biggest model (as the relay counts them) lead
    # their lists.
    admin = {"Authorization": f"Bearer {relay.token(ADMIN)}"}
    users = httpx.get(relay.url + "/admin/users", headers=admin).json()["data"]
    biggest = max(users, key=lambda u: (u["spend"], u["email"]))
    expect(page.get_by_test_id("top-users").locator("li").first).to_contain_text(biggest["email"])
    models: dict[str, float] = {}
    for item in httpx.get(relay.url + "/admin/spend?group=model", headers=admin).json()["data"]:
        models[item["key"]] = models.get(item["key"], 0) + item["cost"]
    top_model = max(models, key=lambda k: models[k])
    expect(page.get_by_test_id("top-models").locator("li").first).to_contain_text(top_model)
    groups = page.get_by_test_id("chart-group")
    groups.get_by_role("button", name="Model").click()
    expect(groups.get_by_role("button", name="Model")).to_have_attribute("aria-pressed", "true")
    expect(legend).to_contain_text("anthropic/claude-3.5-haiku")
    expect(legend).to_contain_text("gpt-4.1-nano")
    groups.get_by_role("button", name="User").click()
    expect(legend).to_contain_text("small.spender@school.example")
    page.get_by_test_id("chart-days").get_by_role("button", name="7 days").click()
    axis = page.get_by_test_id("admin-chart").locator("svg .role-axis-label text[text-anchor=middle]")
    expect(axis).to_have_count(7)
    # The chart is summed by the relay: the page never downloads the ledger to draw it.
    spend = [url.split("group=")[1].split("&")[0] for url in asked if "/admin/spend?" in url]
    assert spend[:2] == ["provider", "model"] and "email" in spend
    assert not [url for url in asked if "/admin/export" in url]


def test_mint_token_and_overwrite_a_days_cost(admin_relay: UpstreamRelay,
                                              context: BrowserContext, page: Page) -> None:
    """An admin mints a token that the relay accepts for that user, and overwrites a day's
    cost: the relay's /usage for the user shows the new figure and so does the users table."""
    relay = admin_relay
    open_admin(relay, context, page)
    page.get_by_test_id("mint-email").fill("New.Student@School.example")
    page.get_by_test_id("mint-token").click()
    minted = page.get_by_test_id("minted-token")
    expect(minted).to_be_visible()
    usage = httpx.get(relay.url + "/usage",
                      headers={"Authorization": f"Bearer {minted.inner_text().strip()}"})
    assert usage.status_code == 200 and usage.json()["email"] == "new.student@school.example"

    today = datetime.now(UTC).date().isoformat()
    page.get_by_test_id("cost-email").fill("new.student@school.example")
    expect(page.get_by_test_id("cost-date")).to_have_value(today)  # ISO, like the rest of the page
    assert page.get_by_test_id("cost-date").get_attribute("type") == "text"  # no US-format date box
    page.get_by_test_id("cost-amount").fill("abc")
    page.get_by_test_id("cost-submit").click()
    expect(page.get_by_test_id("cost-status")).to_have_text(
        "Enter the cost in USD, e.g. 0.25 (0 clears the day).")
    page.get_by_test_id("cost-amount").fill("0.25")
    page.get_by_test_id("cost-submit").click()
    expect(page.get_by_test_id("cost-status")).to_have_text(
        f"Cost for new.student@school.example on {today} set to 0.25")
    usage = httpx.get(relay.url + "/usage",
                      headers={"Authorization": f"Bearer {minted.inner_text().strip()}"}).json()
    assert usage["cost"] == 0.25
    row = page.locator("[data-testid=users] tr[data-email='new.student@school.example']")
    expect(row.locator("td").nth(1)).to_have_text("$0.25 (25%)")
    # The overwritten day has no ledger rows: the chart shows it as "(other)".
    expect(page.locator("#admin-legend")).to_contain_text("(other)")


def test_export_downloads_the_ledger(admin_relay: UpstreamRelay, context: BrowserContext,
                                     page: Page) -> None:
    """The export buttons download the ledger as CSV (with its header) and Parquet."""
    relay = admin_relay
    relay.chat("exported@example.com", "openai", "gpt-4o-mini")
    open_admin(relay, context, page)
    with page.expect_download() as csv_download:
        page.get_by_test_id("export-csv").click()
    path = csv_download.value.path()
    text = path.read_text(encoding="utf-8")
    assert text.startswith("id,ts,date,email,provider,")
    assert "exported@example.com" in text
    assert csv_download.value.suggested_filename.endswith(".csv")
    with page.expect_download() as parquet_download:
        page.get_by_test_id("export-parquet").click()
    assert parquet_download.value.path().read_bytes()[:4] == b"PAR1"
    expect(page.get_by_test_id("export-status")).to_contain_text("Downloaded")


def test_non_admin_is_refused(admin_relay: UpstreamRelay, context: BrowserContext,
                              page: Page) -> None:
    """A signed-in student who is not an admin gets a clear refusal and no admin controls."""
    admin_relay.sign_in(context, "curious@example.com")
    page.goto(admin_relay.url + "/admin")
    wait_ready(page)
    refusal = page.get_by_test_id("admin-refused")
    expect(refusal).to_be_visible()
    expect(refusal).to_contain_text("curious@example.com is not one")
    expect(page.get_by_test_id("users")).to_be_hidden()
    expect(page.get_by_test_id("mint-token")).to_be_hidden()
