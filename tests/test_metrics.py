"""GET /metrics: Prometheus text that prometheus_client's own parser reads, counters that move
with the calls the relay serves, gauges for what it holds, no emails or tokens anywhere, and an
optional bearer token."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient

from relay.auth.tokens import issue_token
from relay.metrics import Histogram
from relay.settings import load_settings
from testkit.fakes.server import serve_asgi
from testkit.fakes.upstream import DEFAULT_KEYS, create_fake_upstream
from testkit.relay_process import clean_env, serve_relay
from tests.conftest import SECRET, auth, make_settings

CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hello"}]}
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(client: TestClient | httpx.Client, **headers: str) -> Samples:
    """Every sample of /metrics, keyed by (name, sorted labels), parsed by prometheus_client."""
    r = client.get("/metrics", headers=headers)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(r.text)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_counters_move_with_calls(client: TestClient, token: Callable[..., str]) -> None:
    """Calls served between two scrapes show up as requests by provider/outcome/status, cost by
    provider/source (equal to what the relay told the client), latency and TTFB observations,
    and HTTP answers by status — refusals and bad tokens included."""
    before = scrape(client)
    costs = Decimal(0)
    for _ in range(3):
        r = client.post("/openai/v1/chat/completions", json=CHAT, headers=auth(token()))
        assert r.status_code == 200
        costs += Decimal(r.headers["x-aipipe-cost"])
    stream = {**CHAT, "stream": True}
    assert client.post("/openai/v1/chat/completions", json=stream, headers=auth(token())).status_code == 200
    assert client.post("/openai/v1/chat/completions", json=CHAT, headers=auth("nonsense")).status_code == 401
    blocked = client.post(
        "/openai/v1/chat/completions", json=CHAT, headers=auth(token("blocked@example.com"))
    )
    assert blocked.status_code == 429
    after = scrape(client)

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("aipipe_requests_total", provider="openai", outcome="ok", status="200") == 4
    assert moved("aipipe_requests_total", provider="openai", outcome="refused", status="429") == 1
    assert moved("aipipe_http_responses_total", status="401") == 1
    assert moved("aipipe_http_responses_total", status="429") == 1
    assert moved("aipipe_http_responses_total", status="200") >= 5  # the calls (+ the first scrape)
    cost = moved("aipipe_cost_usd_total", provider="openai", source="reported") + moved(
        "aipipe_cost_usd_total", provider="openai", source="computed"
    )
    assert cost > float(costs)  # the three buffered calls plus the stream
    assert moved("aipipe_upstream_ttfb_seconds_count", provider="openai") == 4  # not the 401 or 429
    assert moved("aipipe_upstream_latency_seconds_count", provider="openai") == 4
    assert value(after, "aipipe_upstream_latency_seconds_bucket", provider="openai", le="+Inf") == value(
        after, "aipipe_upstream_latency_seconds_count", provider="openai"
    )
    assert value(after, "aipipe_reservations_open") == 0
    assert value(after, "aipipe_reserved_usd") == 0
    assert value(after, "aipipe_build_info", version=__import__("relay").__version__) == 1
    assert value(after, "aipipe_start_time_seconds") <= time.time()


def test_aggregates_only(client: TestClient, token: Callable[..., str]) -> None:
    """No email, token, model name or path a client chose appears in the exposition."""
    tok = token("secret.person@example.com")
    client.post("/openai/v1/chat/completions", json={**CHAT, "model": "gpt-4o-mini"}, headers=auth(tok))
    client.get("/openai/v1/models/evil-path-xyz", headers=auth(tok))
    text = client.get("/metrics").text
    for private in ("secret.person", "example.com", tok, tok[:20], "gpt-4o-mini", "evil-path-xyz"):
        assert private not in text


def test_openmetrics_when_asked(client: TestClient) -> None:
    """A scraper asking for OpenMetrics gets it (prometheus_client chooses the encoder)."""
    r = client.get("/metrics", headers={"accept": "application/openmetrics-text; version=1.0.0"})
    assert r.headers["content-type"].startswith("application/openmetrics-text")
    assert r.text.rstrip().endswith("# EOF")


def test_metrics_token(make_client: Callable[..., TestClient], tmp_path: Path) -> None:
    """With AIPIPE_METRICS_TOKEN, a scrape needs it as a bearer token (401 in the envelope otherwise)."""
    client = make_client(make_settings(tmp_path, metrics_token="scrape-me-0123456789"))
    for headers in ({}, {"authorization": "Bearer wrong"}, {"authorization": "scrape-me-0123456789"}):
        r = client.get("/metrics", headers=headers)
        assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_metrics_token"
        assert "scrape-me" not in r.text
    assert scrape(client, authorization="Bearer scrape-me-0123456789")


def test_histogram_buckets_are_cumulative() -> None:
    """Each bucket counts the observations at or below its bound; +Inf counts them all."""
    h = Histogram((0.1, 1.0))
    for v in (0.05, 0.1, 0.5, 3.0):
        h.observe(v)
    assert h.cumulative() == [("0.1", 2), ("1.0", 3), ("+Inf", 4)]
    assert h.sum == pytest.approx(3.65)


# -- a real relay: what it holds while a stream runs -------------------------------------------
@pytest.fixture(scope="module")
def upstream_url() -> Iterator[str]:
    with serve_asgi(create_fake_upstream()) as url:
        yield url


def test_gauges_while_a_stream_runs(tmp_path: Path, upstream_url: str) -> None:
    """During a slow stream `aipipe serve` shows one open reservation holding money and a request
    in flight; once it ends, none, and the ledger rows are written (no backlog, no lag)."""
    (tmp_path / "aipipe.toml").write_text('[budget]\n"*" = { limit = 1.0, days = 7 }\n')
    env = clean_env(
        AIPIPE_SECRET=SECRET, AIPIPE_DATA_DIR=str(tmp_path / "data"),
        AIPIPE_CONFIG=str(tmp_path / "aipipe.toml"), OPENAI_API_KEY=DEFAULT_KEYS["openai"],
        AIPIPE_OPENAI_BASE=f"{upstream_url}/openai",
        AIPIPE_FLUSH_SECONDS="0.1",
    )
    token = issue_token(load_settings(env, cwd=tmp_path), "ann@example.com")
    with serve_relay(tmp_path, env) as url, httpx.Client(base_url=url, timeout=30) as http:
        started = threading.Event()
        done: list[int] = []

        def stream() -> None:
            headers = {"authorization": f"Bearer {token}", "x-fake": "slow", "x-fake-chunks": "30",
                       "x-fake-delay": "100"}
            with httpx.stream("POST", f"{url}/openai/v1/chat/completions", json={**CHAT, "stream": True},
                              headers=headers, timeout=30) as r:
                for _ in r.iter_bytes():
                    started.set()
                done.append(r.status_code)

        thread = threading.Thread(target=stream, daemon=True)
        thread.start()
        assert started.wait(10)
        during = scrape(http)
        assert value(during, "aipipe_reservations_open") == 1
        assert value(during, "aipipe_reserved_usd") > 0
        assert value(during, "aipipe_requests_in_flight") >= 2  # the stream and this scrape
        thread.join(30)
        assert done == [200]
        deadline = time.monotonic() + 10
        after = scrape(http)
        while value(after, "aipipe_ledger_rows_written_total") < 1 and time.monotonic() < deadline:
            time.sleep(0.05)  # the row is written at the next flush
            after = scrape(http)
        assert value(after, "aipipe_reservations_open") == 0
        assert value(after, "aipipe_reserved_usd") == 0
        assert value(after, "aipipe_ledger_rows_pending") == 0
        assert value(after, "aipipe_ledger_rows_written_total") == 1
        assert value(after, "aipipe_store_lag_seconds") == 0
        assert value(after, "aipipe_store_healthy") == 1
        assert value(after, "process_start_time_seconds") > 0  # the standard process collector
        assert value(after, "aipipe_requests_total", provider="openai", outcome="ok", status="200") == 1
