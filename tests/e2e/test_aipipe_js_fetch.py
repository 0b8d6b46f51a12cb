"""Plain `fetch` from a web page on another origin, signed in through the relay's /aipipe.js:
the page streams a chat completion, reads it as it arrives, and finds the relay's cost comment —
the way a third-party web app with no back-end uses AI Pipe."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from urllib.parse import quote

import httpx
import pytest
from playwright.sync_api import Page
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

from testkit.relay_process import free_port
from tests.e2e.conftest import ThreadServer, UpstreamRelay, wait_ready

pytestmark = pytest.mark.e2e
PACE = 0.08  # seconds between the fake provider's stream pieces during this test
PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><link rel="icon" href="data:,"><title>An app</title></head>
<body>
<script type="module">
import { getProfile, baseUrl } from "RELAY/aipipe.js";

const { token } = getProfile();  // handed back by /login in the URL fragment
window.run = async () => {
  const started = performance.now();
  const response = await fetch(`${baseUrl}/openai/v1/chat/completions`, {
    method: "POST",
    headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
    body: JSON.stringify({
      model: "gpt-4o-mini", stream: true, messages: [{ role: "user", content: "Say hello" }],
    }),
  });
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  const pieces = [];
  let buffer = "", cost = null;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += value;
    for (let end; (end = buffer.indexOf("\\n\\n")) >= 0; ) {
      const event = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      if (event.startsWith(": aipipe ")) cost = JSON.parse(event.slice(9));
      else if (event.startsWith("data: {")) {
        const chunk = JSON.parse(event.slice(6));
        pieces.push({ ms: performance.now() - started, text: chunk.choices[0].delta.content ?? "" });
      }
    }
  }
  return { status: response.status, remaining: response.headers.get("x-aipipe-remaining"),
           pieces, cost };
};
document.body.dataset.ready = "true";
</script>
</body></html>
"""


@pytest.fixture
def app_page(upstream_relay: UpstreamRelay) -> Iterator[str]:
    """The app's page on its own origin, importing the relay's /aipipe.js."""
    async def page(request: Request) -> HTMLResponse:
        return HTMLResponse(PAGE.replace("RELAY", upstream_relay.url))

    port = free_port()
    with ThreadServer(Starlette(routes=[Route("/app.html", page)]), port):
        yield f"http://localhost:{port}/app.html"


@pytest.fixture
def paced(upstream_relay: UpstreamRelay) -> Iterator[None]:
    """The fake provider spaces its stream pieces PACE apart while the test runs."""
    upstream_relay.fake.state.pace = PACE
    try:
        yield
    finally:
        upstream_relay.fake.state.pace = 0.0


def test_fetch_streams_through_aipipe_js(upstream_relay: UpstreamRelay, app_page: str, paced: None,
                                         page: Page) -> None:
    """The page's own fetch reads the reply piece by piece (spread in time, each chunk with a
    choice), sees the budget header across origins, and ends with the relay's cost comment,
    equal to the cost the relay recorded."""
    email = "fetch@example.com"
    token = upstream_relay.token(email)
    page.goto(f"{app_page}#aipipe_token={quote(token)}&aipipe_email={quote(email)}")
    wait_ready(page)
    result = page.evaluate("run()")
    assert result["status"] == 200 and result["remaining"] is not None
    texts = [p["text"] for p in result["pieces"]]
    assert "".join(texts) == "Hello from the fake upstream"
    arrivals = [p["ms"] / 1000 for p in result["pieces"] if p["text"]]
    assert len(arrivals) == 5 and arrivals[-1] - arrivals[0] >= 4 * PACE * 0.6
    rows = httpx.get(f"{upstream_relay.url}/usage/requests",
                     headers={"Authorization": f"Bearer {token}"}, timeout=10).json()["data"]
    row = next(r for r in rows if r["path"] == "/v1/chat/completions")
    assert row["outcome"] == "ok" and row["cost_source"] == "computed" and row["cost"] > 0
    assert result["cost"]["cost_source"] == "computed"
    assert Decimal(result["cost"]["cost"]) == Decimal(str(row["cost"])).quantize(Decimal("1e-8"))
