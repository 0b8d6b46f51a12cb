"""Every way a call can end still records a cost: finished, abandoned by the client, broken by
the provider, timed out, or answered without usage — and streamed OpenAI-style answers end with
an SSE comment carrying the recorded cost.

Aborts, breaks and timeouts run on real ports (uvicorn), where a dropped connection is real.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import openai
import pytest

from relay.app import create_app
from relay.auth.tokens import issue_token
from testkit.fakes.server import serve_asgi
from testkit.fakes.upstream import create_fake_upstream
from tests.conftest import auth, make_settings
from tests.test_costing_endpoints import (
    billed_cost,
    chat,
    gemini_body,
    ledger,
    ledger_rows,
    price_of,
    token_cost,
)

IDLE = 0.6  # seconds without a byte before the relay gives up on the provider


class Live:
    """The relay and the fake upstream, each on its own port."""

    def __init__(self, relay: str, app: Any, upstream: Any, token: str) -> None:
        self.relay, self.app, self.upstream, self.token = relay, app, upstream, token

    def rows(self, count: int, timeout: float = 10) -> list[dict[str, Any]]:
        """Wait until the ledger holds `count` rows (a dropped stream is recorded a moment
        after the client has gone)."""
        deadline = time.monotonic() + timeout
        while True:
            rows = ledger_rows(self.app.state.store)
            if len(rows) >= count or time.monotonic() > deadline:
                return rows
            time.sleep(0.05)

    def headers(self, fake: str = "", **extra: str) -> dict[str, str]:
        return {**auth(self.token), **({"x-fake": fake} if fake else {}), **extra}


@pytest.fixture
def live(tmp_path) -> Iterator[Live]:
    upstream = create_fake_upstream()
    with serve_asgi(upstream) as up:
        settings = make_settings(tmp_path, base=up, stream_idle_timeout=IDLE)
        app = create_app(settings)
        with serve_asgi(app) as relay:
            yield Live(relay, app, upstream, issue_token(settings, "rich@example.com"))


# (provider path, body) for a streamed call on each provider and API shape.
STREAMS = {
    "openai-chat": ("/openai/v1/chat/completions", chat("gpt-4o-mini", stream=True)),
    "openai-responses": ("/openai/v1/responses",
                         {"model": "gpt-4.1-mini", "input": "tell me a story", "stream": True}),
    "openrouter": ("/openrouter/v1/chat/completions",
                   chat("anthropic/claude-3.5-haiku", stream=True)),
    "gemini-sse": ("/geminiv1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse",
                   gemini_body()),
    "gemini-array": ("/geminiv1beta/models/gemini-2.0-flash:streamGenerateContent",
                     gemini_body()),
}


@pytest.mark.parametrize("name", list(STREAMS))
def test_client_abandoning_a_stream_records_a_cost(live, name) -> None:
    """The client leaves after the first bytes: the row is `aborted` and non-zero —
    `estimated` where no usage had arrived yet, `computed` from Gemini's running usage, which
    rides on every element (the last total received counts)."""
    path, body = STREAMS[name]
    headers = live.headers("slow", **{"x-fake-delay": "150", "x-fake-chunks": "20"})
    with httpx.stream("POST", live.relay + path, json=body, headers=headers, timeout=30) as r:
        assert r.status_code == 200
        for _ in r.iter_raw():
            break  # leave as soon as anything arrived
    [row] = live.rows(1)
    assert row["outcome"] == "aborted" and row["streamed"] is True
    assert row["cost"] > 0
    assert row["cost_source"] == ("computed" if name.startswith("gemini") else "estimated")
    assert live.upstream.state.billed == []  # the fake never finished: nothing exact to match


def test_abandoned_speech_download_is_still_billed_exactly(live) -> None:
    """tts-1 bills the input characters whether or not the audio was fully read."""
    text = "A sentence the client will stop listening to."
    body = {"model": "tts-1", "input": text, "voice": "alloy"}
    headers = live.headers("slow", **{"x-fake-delay": "200"})
    with httpx.stream("POST", live.relay + "/openai/v1/audio/speech", json=body,
                      headers=headers, timeout=30) as r:
        next(r.iter_raw())
    [row] = live.rows(1)
    assert row["outcome"] == "aborted"
    assert row["cost"] == len(text) * Decimal(15) / 1_000_000
    assert row["cost_source"] == "computed"


@pytest.mark.parametrize("name", ["openai-chat", "openai-responses", "openrouter"])
def test_provider_breaking_a_stream_before_usage_records_an_estimate(live, name) -> None:
    """The provider drops the connection mid-stream: `broken`, non-zero, `estimated`; the SSE
    client is told with an error event."""
    path, body = STREAMS[name]
    r = httpx.post(live.relay + path, json=body, headers=live.headers("break"), timeout=30)
    assert '"upstream_error"' in r.text
    [row] = live.rows(1)
    assert row["outcome"] == "broken" and row["status"] == 502
    assert row["cost"] > 0 and row["cost_source"] == "estimated"


@pytest.mark.parametrize("name", ["gemini-sse", "gemini-array"])
def test_usage_that_arrived_before_the_break_is_used(live, name) -> None:
    """Gemini repeats its running usage in every element: when the stream breaks, the last
    usage received is the cost (`computed`), not an estimate."""
    path, body = STREAMS[name]
    headers = live.headers("break", **{"x-fake-chunks": "6"})
    httpx.post(live.relay + path, json=body, headers=headers, timeout=30)
    [row] = live.rows(1)
    assert row["outcome"] == "broken"
    assert row["cost_source"] == "computed"
    # The fake cuts after 3 of 6 elements: the 3rd element's usage is the bill.
    prompt = len(body["contents"][0]["parts"][0]["text"].split())  # the fake: a token a word
    assert row["output_tokens"] == 3
    assert row["cost"] == token_cost(price_of("gemini", "gemini-2.0-flash"), inp=prompt, out=3)


def test_provider_that_never_answers_times_out_with_an_estimate(live) -> None:
    """A silent provider: after the idle timeout the client gets 504 and the sent prompt is
    charged as an estimate (the provider may bill it)."""
    r = httpx.post(live.relay + "/openai/v1/chat/completions", json=chat("gpt-4o-mini"),
                   headers=live.headers("silent"), timeout=30)
    assert r.status_code == 504
    [row] = live.rows(1)
    assert row["status"] == 504 and row["outcome"] == "broken"
    assert row["cost"] > 0 and row["cost_source"] == "estimated"


def test_stream_that_stalls_past_the_idle_timeout_is_broken_and_estimated(live) -> None:
    """Chunks stop coming for longer than the idle timeout: the relay ends the stream and
    charges what was sent and streamed."""
    headers = live.headers("slow", **{"x-fake-delay": str(int(IDLE * 2500))})
    r = httpx.post(live.relay + "/openai/v1/chat/completions",
                   json=chat("gpt-4o-mini", stream=True), headers=headers, timeout=30)
    assert "ReadTimeout" in r.text
    [row] = live.rows(1)
    assert row["outcome"] == "broken"
    assert row["cost"] > 0 and row["cost_source"] == "estimated"


@pytest.mark.parametrize("stream", [False, True])
def test_answer_without_usage_is_estimated_not_free(client, token, upstream, stream) -> None:
    """`nousage`: the provider reported nothing, so the relay estimates and marks it."""
    r = client.post("/openai/v1/chat/completions", json=chat("gpt-4o-mini", stream=stream),
                    headers={**auth(token()), "x-fake": "nousage"})
    assert r.status_code == 200
    row = ledger(client)[-1]
    assert row["cost"] > 0 and row["cost_source"] == "estimated"


def test_provider_error_costs_nothing(client, token, upstream) -> None:
    """A provider 500 is not billed by the provider: $0, outcome `error`."""
    r = client.post("/openai/v1/chat/completions", json=chat("gpt-4o-mini"),
                    headers={**auth(token()), "x-fake": "error500"})
    assert r.status_code == 500
    row = ledger(client)[-1]
    assert row["cost"] == 0 and row["outcome"] == "error"


def test_unpriced_model_is_refused_before_the_provider(client, token, upstream) -> None:
    """An OpenAI model with no price is refused up front, never forwarded and recorded free."""
    r = client.post("/openai/v1/chat/completions", json=chat("gpt-99-imaginary"),
                    headers=auth(token()))
    assert r.status_code == 400 and r.json()["error"]["code"] == "model_not_priced"
    assert upstream.state.received == [] and ledger(client) == []


# -- the cost comment at the end of streamed OpenAI-style answers ------------------------------
def comments(text: str) -> list[dict[str, Any]]:
    return [json.loads(line[len(": aipipe "):]) for line in text.split("\n")
            if line.startswith(": aipipe ")]


@pytest.mark.parametrize("path,body", [
    ("/openai/v1/chat/completions", chat("gpt-4o-mini", stream=True)),
    ("/openai/v1/responses", {"model": "gpt-4o-mini", "input": "hello there", "stream": True}),
    ("/openrouter/v1/chat/completions", chat("openai/gpt-4o-mini", stream=True)),
])
def test_stream_ends_with_a_comment_carrying_the_recorded_cost(client, token, upstream, path,
                                                               body) -> None:
    """After the provider's last byte comes one `: aipipe {...}` comment whose cost is the
    ledger's cost; the provider's bytes before it are unchanged."""
    r = client.post(path, json=body, headers=auth(token()))
    [info] = comments(r.text)
    row = ledger(client)[-1]
    assert Decimal(info["cost"]) == row["cost"].quantize(Decimal("1e-8")) and row["cost"] > 0
    assert info["cost_source"] == row["cost_source"]
    assert abs(Decimal(info["remaining"]) - (1 - row["cost"])) <= Decimal("0.0000005")
    body_bytes, _, tail = r.text.rpartition(": aipipe ")
    assert body_bytes.endswith("\n\n") and tail.endswith("}\n\n")
    assert Decimal(info["cost"]) == billed_cost(upstream.state.billed[-1]).quantize(
        Decimal("1e-8"))


def test_gemini_streams_get_no_comment(client, token) -> None:
    """Only OpenAI-style SSE gets the comment; Gemini's stream is passed through as it is."""
    r = client.post("/geminiv1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse",
                    json=gemini_body(), headers=auth(token()))
    assert r.status_code == 200 and comments(r.text) == []


def test_broken_stream_ends_with_an_estimated_cost_comment(live) -> None:
    """A stream the provider breaks still tells the client what was recorded."""
    path, body = STREAMS["openai-chat"]
    r = httpx.post(live.relay + path, json=body, headers=live.headers("break"), timeout=30)
    [info] = comments(r.text)
    [row] = live.rows(1)
    assert info["cost_source"] == "estimated"
    assert Decimal(info["cost"]) == row["cost"].quantize(Decimal("1e-8"))


def test_openai_sdk_streams_unaffected_by_the_comment(client, token) -> None:
    """The official SDK reads a streamed chat and a streamed Responses call to the end."""
    sdk = openai.OpenAI(api_key=token(), base_url="http://testserver/openai/v1",
                        http_client=client)
    chunks = list(sdk.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "Hello from the fake upstream"
    events = list(sdk.responses.create(model="gpt-4o-mini", input="hi", stream=True))
    assert events[-1].type == "response.completed"
