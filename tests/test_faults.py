"""Upstream faults: connect errors, timeouts, 5xx, cut streams, silent providers and clients that
leave. Each gives the client a clear JSON error (or a final SSE error event mid-stream), is
recorded in the ledger with what it cost, releases its reservation and leaves the relay healthy.

Timing matters here (timeouts, cuts), so the fake upstream and the relay run on real ports."""

from __future__ import annotations

import gc
import json
import socket
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from relay.app import create_app
from relay.auth.tokens import issue_token
from testkit.fakes.server import serve_asgi
from testkit.fakes.upstream import DEFAULT_KEYS, create_fake_upstream
from tests.conftest import auth, make_settings, provider_part

CHAT = "/openai/v1/chat/completions"
IDLE = 0.6  # the relay's stream idle timeout in these tests
EMAIL = "student@example.com"


class Live:
    def __init__(self, relay: str, app: Any, upstream: Any, token: str):
        self.relay, self.app, self.upstream, self.token = relay, app, upstream, token

    def post(self, path: str, body: dict[str, Any], fake: str = "", **headers: str) -> httpx.Response:
        h = {**auth(self.token), "x-fake": fake, **headers}
        return httpx.post(self.relay + path, json=body, headers=h, timeout=30)

    def rows(self, n: int = 1, timeout: float = 20) -> list[dict[str, Any]]:
        """Ledger rows, waiting until at least `n` are recorded (streams record on close)."""
        keys = ("status", "outcome", "cost", "cost_source", "streamed", "model")
        deadline = time.monotonic() + timeout
        while True:
            found = self.app.state.store.query(f"SELECT {', '.join(keys)} FROM requests ORDER BY ts")
            if len(found) >= n or time.monotonic() > deadline:
                return [dict(zip(keys, r, strict=True)) for r in found]
            time.sleep(0.05)

    def assert_healthy(self) -> None:
        """/healthz fine: no request still in flight, no reservation left behind; and an
        ordinary request still works."""
        deadline = time.monotonic() + 5
        while True:
            health = httpx.get(self.relay + "/healthz", timeout=5)
            assert health.status_code == 200 and health.json()["ok"] is True
            idle = (health.json()["requests_in_flight"], health.json()["reserved_usd"]) == (0, "0")
            if idle or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert idle, health.json()
        r = self.post(CHAT, chat())
        assert r.status_code == 200, r.text


def chat(model: str = "gpt-4o-mini", **extra: Any) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": "tell me a story"}], **extra}


def assert_envelope(r: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert body["message"] == body["error"]["message"] and body["message"]
    assert body["error"]["code"] == code
    return body


def sse_events(text: str) -> list[dict[str, Any]]:
    return [json.loads(line[6:]) for line in text.splitlines() if line.startswith("data: {")]


@pytest.fixture
def live(tmp_path: Path) -> Iterator[Live]:
    upstream = create_fake_upstream()
    with serve_asgi(upstream) as up:
        settings = make_settings(
            tmp_path, base=up, upstream_timeout=2.0, stream_idle_timeout=IDLE
        )
        app = create_app(settings)
        with serve_asgi(app) as relay:
            yield Live(relay, app, upstream, issue_token(settings, EMAIL))


def _closed_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_connect_error_is_a_502_envelope_and_recorded(tmp_path: Path) -> None:
    """A provider that refuses connections gives 502 upstream_unavailable, a ledger row with no
    cost (nothing reached the provider, so there is nothing to pay), and the relay keeps
    serving."""
    dead = f"http://127.0.0.1:{_closed_port()}"
    upstream = create_fake_upstream()
    with serve_asgi(upstream) as up:
        bases = {"openai": f"{dead}/openai", "openrouter": f"{up}/openrouter", "gemini": f"{up}/gemini",
                 "anthropic": f"{up}/anthropic"}
        settings = make_settings(tmp_path, base=up, provider_bases=bases, upstream_timeout=2.0)
        app = create_app(settings)
        with serve_asgi(app) as relay:
            live = Live(relay, app, upstream, issue_token(settings, EMAIL))
            body = assert_envelope(live.post(CHAT, chat()), 502, "upstream_unavailable")
            assert "ConnectError" in body["message"]
            assert_envelope(live.post(CHAT, chat(stream=True)), 502, "upstream_unavailable")
            rows = live.rows(2)
            assert [(r["status"], r["outcome"], r["cost"]) for r in rows] == [(502, "broken", 0)] * 2
            ok = live.post("/openrouter/v1/chat/completions", chat("openai/gpt-4o-mini"))
            assert ok.status_code == 200
            assert not app.state.budgets._reserved


def test_silent_provider_times_out_with_504(live: Live) -> None:
    """A provider that never answers is cut after the timeout: 504 upstream_timeout in our
    envelope (streamed or not), recorded, and the relay stays healthy."""
    start = time.monotonic()
    assert_envelope(live.post(CHAT, chat(), "silent"), 504, "upstream_timeout")
    assert_envelope(live.post(CHAT, chat(stream=True), "silent"), 504, "upstream_timeout")
    assert time.monotonic() - start < 10
    rows = live.rows(2)
    assert [(r["status"], r["outcome"]) for r in rows] == [(504, "broken")] * 2
    # The prompt reached the provider, which may bill it: charged as an estimate, not $0.
    assert all(r["cost"] > 0 and r["cost_source"] == "estimated" for r in rows)
    live.assert_healthy()


def test_stream_idle_timeout_ends_with_an_sse_error_event(live: Live) -> None:
    """A stream that goes quiet for longer than the idle timeout ends with a final SSE error
    event; the tokens already streamed are charged as an estimate, never $0."""
    r = live.post(CHAT, chat(stream=True), "slow", **{"x-fake-delay": "3000"})
    assert r.status_code == 200
    events = sse_events(r.text)
    assert events[-1]["error"]["type"] == "upstream_error"
    assert "ReadTimeout" in events[-1]["error"]["message"]
    [row] = live.rows()
    assert row["outcome"] == "broken" and row["status"] == 502
    assert row["cost"] > 0 and row["cost_source"] == "estimated"
    live.assert_healthy()


def test_slow_stream_longer_than_the_idle_timeout_completes(live: Live) -> None:
    """The idle timeout is per gap, not a total: a stream lasting several times the timeout,
    with each gap under it, arrives whole."""
    start = time.monotonic()
    r = live.post(CHAT, chat(stream=True), "slow", **{"x-fake-delay": "250", "x-fake-chunks": "10"})
    elapsed = time.monotonic() - start
    assert r.status_code == 200 and provider_part(r.text).endswith("data: [DONE]")
    assert elapsed > 3 * IDLE
    [row] = live.rows()
    assert row["outcome"] == "ok" and row["cost_source"] == "computed"


def test_provider_5xx_passes_through_unchanged_and_costs_nothing(live: Live) -> None:
    """A provider 500 reaches the client with the provider's own body, recorded as an error
    that costs nothing; streamed requests get the same JSON error."""
    for body in (chat(), chat(stream=True)):
        r = live.post(CHAT, body, "error500")
        assert r.status_code == 500
        assert r.json()["error"]["type"] == "server_error"  # OpenAI's shape, as sent
        assert "message" not in r.json()  # not reshaped into ours
    rows = live.rows(2)
    assert [(r["status"], r["outcome"], r["cost"]) for r in rows] == [(500, "error", 0)] * 2
    live.assert_healthy()


@pytest.mark.parametrize("path,body", [
    (CHAT, chat(stream=True)),
    ("/openai/v1/responses", {"model": "gpt-4o-mini", "input": "tell me a story", "stream": True}),
    ("/openrouter/v1/chat/completions", chat("openai/gpt-4o-mini", stream=True)),
    ("/geminiv1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse",
     {"contents": [{"parts": [{"text": "tell me a story"}]}]}),
])
def test_stream_cut_midway_ends_with_an_error_event_and_is_charged(live: Live, path, body) -> None:
    """A provider that drops the connection mid-stream: the client receives what was sent, then
    a final SSE error event; the ledger holds a cost, not $0 (Gemini reports usage on every
    chunk, so its partial usage is priced; the others are estimated)."""
    r = live.post(path, body, "break")
    assert r.status_code == 200
    events = sse_events(r.text)
    assert len(events) >= 2
    assert events[-1]["error"]["type"] == "upstream_error"
    [row] = live.rows()
    assert row["outcome"] == "broken" and row["cost"] > 0
    assert row["cost_source"] == ("computed" if "gemini" in path else "estimated")
    live.assert_healthy()


def test_json_answer_cut_midway_is_a_502_and_charged(live: Live) -> None:
    """A non-streamed answer cut mid-body is a 502 envelope; the prompt was sent, so the call is
    charged an estimate."""
    assert_envelope(live.post(CHAT, chat(), "break"), 502, "upstream_unavailable")
    [row] = live.rows()
    assert row["outcome"] == "broken" and row["cost"] > 0 and row["cost_source"] == "estimated"
    live.assert_healthy()


def test_client_leaving_mid_stream_releases_its_reservation(live: Live) -> None:
    """A client that disconnects mid-stream is recorded as aborted with an estimated cost, its
    reservation is released, and the relay keeps serving."""
    headers = {**auth(live.token), "x-fake": "slow", "x-fake-delay": "200", "x-fake-chunks": "30"}
    with httpx.stream("POST", live.relay + CHAT, json=chat(stream=True), headers=headers, timeout=30) as r:
        for line in r.iter_lines():
            if '"content": "Hello' in line:
                break
    [row] = live.rows()
    assert row["outcome"] == "aborted" and row["cost"] > 0
    live.assert_healthy()


def test_client_leaving_is_recorded_at_once_not_at_garbage_collection(live: Live) -> None:
    """An abandoned stream is recorded and its reservation released with the cyclic garbage
    collector off: the relay closes the tee itself rather than leaving it to be finalised
    whenever the collector gets to it (which, disabled, it never does)."""
    headers = {**auth(live.token), "x-fake": "slow", "x-fake-delay": "100", "x-fake-chunks": "50"}
    gc.disable()
    try:
        with httpx.stream("POST", live.relay + CHAT, json=chat(stream=True), headers=headers,
                          timeout=30) as r:
            for line in r.iter_lines():
                if '"content": "Hello' in line:
                    break
        assert [row["outcome"] for row in live.rows(1, timeout=10)] == ["aborted"]
        assert live.app.state.budgets.reserved() == 0
    finally:
        gc.enable()


def test_client_leaving_before_headers_is_recorded(live: Live) -> None:
    """A client that gives up while a slow provider has not answered yet does not leave a
    reservation behind, and the call is still recorded once it ends."""
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(live.relay + CHAT, json=chat(), timeout=0.2,
                   headers={**auth(live.token), "x-fake": "silent"})
    rows = live.rows(1)
    assert [(r["status"], r["outcome"]) for r in rows] == [(504, "broken")]
    live.assert_healthy()


def test_upstream_key_fragments_are_masked_in_error_bodies(live: Live) -> None:
    """A provider error quoting the operator's key is passed on with the key masked."""
    r = live.post(CHAT, chat(), "leakkey")
    assert r.status_code == 400
    assert DEFAULT_KEYS["openai"] not in r.text
    assert "sk-t****ai" in r.text
    assert r.json()["error"]["message"].startswith("Request rejected for API key")


def test_key_masking_covers_text_errors_and_stream_events(live: Live) -> None:
    """A text/plain error and an SSE error event split mid-key across two chunks, each quoting
    the operator's key: both reach the client with the key masked."""
    r = live.post(CHAT, chat(), "leaktext")
    assert r.status_code == 502 and r.headers["content-type"].startswith("text/plain")
    assert DEFAULT_KEYS["openai"] not in r.text and "sk-t****ai" in r.text
    r = live.post(CHAT, chat(stream=True), "leakstream,slow", **{"x-fake-delay": "50"})
    assert r.status_code == 200
    assert DEFAULT_KEYS["openai"] not in r.text
    event = json.loads(r.text.split("data: ", 1)[1].split("\n\n")[0])
    assert event["error"]["message"] == "key sk-t****ai is over its quota"


def test_many_faults_in_a_row_leave_the_relay_healthy(live: Live) -> None:
    """A burst of mixed faults, then normal service: no leaked reservations, costs add up."""
    for fake in ("error500", "break", "error429", "leakkey", "break", "silent"):
        live.post(CHAT, chat(stream=fake != "leakkey"), fake)
    rows = live.rows(6)
    assert len(rows) == 6
    spend = live.app.state.store.spend(EMAIL, 7)
    assert spend == sum((Decimal(r["cost"]) for r in rows), Decimal(0))
    live.assert_healthy()
