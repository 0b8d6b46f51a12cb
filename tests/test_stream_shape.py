"""Streams look like the provider's: the usage chunk the relay asked for is read but not
forwarded unless the client asked for usage itself, and a streamed request that fails answers a
whole JSON error."""

from __future__ import annotations

import json
import time

import httpx
import pytest

from relay.providers.usage_chunk import UsageChunkFilter
from tests.conftest import auth, provider_part
from tests.test_proxy import chat, ledger

ROLE = b'data: {"id":"c1","choices":[{"index":0,"delta":{"role":"assistant","content":""}}],"usage":null}'
TEXT = b'data: {"id":"c1","choices":[{"index":0,"delta":{"content":"Hi"}}],"usage":null}'
STOP = b'data: {"id":"c1","choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"usage":null}'
USAGE = b'data: {"id":"c1","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":1}}'
DONE = b"data: [DONE]"


def stream(*events: bytes, sep: bytes = b"\n\n") -> bytes:
    return b"".join(e + sep for e in events)


def run(data: bytes, size: int) -> bytes:
    """`data` through the filter in pieces of `size` bytes."""
    f = UsageChunkFilter()
    out = b"".join(f.feed(data[i: i + size]) for i in range(0, len(data), size))
    return out + f.close()


@pytest.mark.parametrize("sep", [b"\n\n", b"\r\n\r\n"])
@pytest.mark.parametrize("size", [1, 2, 7, 50, 10_000])
def test_only_the_usage_chunk_is_left_out(sep: bytes, size: int) -> None:
    """However the bytes are split, what passes is the stream without its usage-only chunk, every
    other byte unchanged."""
    whole = stream(ROLE, TEXT, STOP, USAGE, DONE, sep=sep)
    assert run(whole, size) == stream(ROLE, TEXT, STOP, DONE, sep=sep)


def test_other_empty_choices_and_usage_on_a_choice_pass() -> None:
    """A chunk with no choices but no usage (Azure's prompt-filter chunk), and usage riding on a
    chunk that has a choice (OpenRouter), are the provider's: they pass."""
    azure = b'data: {"choices":[],"prompt_filter_results":[{"prompt_index":0}]}'
    riding = b'data: {"choices":[{"index":0,"delta":{}}],"usage":{"prompt_tokens":1}}'
    comment = b": OPENROUTER PROCESSING"
    whole = stream(comment, azure, TEXT, riding, DONE)
    assert run(whole, 3) == whole


def test_events_pass_as_soon_as_they_are_whole() -> None:
    """Only an unfinished event is held back; a last one without its blank line comes out at
    close (and a usage chunk there is still left out)."""
    f = UsageChunkFilter()
    assert f.feed(TEXT + b"\n\n" + STOP[:10]) == TEXT + b"\n\n"
    assert f.feed(STOP[10:] + b"\n\n") == STOP + b"\n\n"
    assert f.feed(USAGE + b"\n") == b""
    assert f.close() == b""
    f = UsageChunkFilter()
    assert f.feed(DONE) == b"" and f.close() == DONE


def data_events(text: str) -> list[dict]:
    return [json.loads(line[6:]) for line in provider_part(text).splitlines()
            if line.startswith("data: {")]


def test_relay_reads_the_usage_chunk_it_asked_for_without_forwarding_it(
        client, token, upstream) -> None:
    """The client did not ask for usage: it gets none, every chunk has a choice, and the call is
    still priced from the usage the provider sent the relay."""
    r = client.post("/openai/v1/chat/completions", json=chat(stream=True), headers=auth(token()))
    assert r.status_code == 200
    events = data_events(r.text)
    assert events and all(e["choices"] for e in events)
    assert all(e.get("usage") is None for e in events)
    assert provider_part(r.text).endswith("data: [DONE]")
    assert ": aipipe " in r.text  # the relay's cost comment stays
    billed = upstream.state.billed[-1]["usage"]
    [row] = ledger(client)
    assert row["cost_source"] == "computed"
    assert row["output_tokens"] == billed["completion_tokens"]


def test_client_that_asks_for_usage_gets_it(client, token, upstream) -> None:
    """`stream_options.include_usage` from the client: the usage chunk reaches it unchanged."""
    body = chat(stream=True, stream_options={"include_usage": True})
    r = client.post("/openai/v1/chat/completions", json=body, headers=auth(token()))
    events = data_events(r.text)
    assert events[-1]["choices"] == [] and events[-1]["usage"] == upstream.state.billed[-1]["usage"]


@pytest.mark.parametrize("fault", ["error429", "error500", "leakkey"])
def test_streamed_request_the_provider_refuses_is_a_whole_json_error(
        client, token, upstream, fault) -> None:
    """A provider error on a streamed request is answered whole: its status, its JSON body
    (with the operator's key masked), recorded as an error at no cost."""
    r = client.post("/openai/v1/chat/completions", json=chat(stream=True),
                    headers={**auth(token()), "x-fake": fault})
    assert r.status_code >= 400
    assert r.headers["content-type"].startswith("application/json")
    assert r.json()["error"]["message"]
    assert "sk-test-openai" not in r.text
    [row] = ledger(client)
    assert (row["outcome"], row["cost"], row["streamed"]) == ("error", 0, True)


def test_client_that_leaves_after_the_end_marker_got_a_whole_answer(live) -> None:
    """The openai SDK closes the connection as soon as it reads `data: [DONE]`; the provider may
    close its side later. The answer was whole: recorded `ok` at its computed cost, not
    `aborted`."""
    relay, tok, app = live
    headers = {"authorization": f"Bearer {tok}", "x-fake": "linger", "x-fake-delay": "1500"}
    with httpx.stream("POST", f"{relay}/openai/v1/chat/completions", json=chat(stream=True),
                      headers=headers, timeout=30) as r:
        for line in r.iter_lines():
            if line == "data: [DONE]":
                break
    rows: list = []
    deadline = time.monotonic() + 10
    while not rows and time.monotonic() < deadline:
        rows = app.state.store.query("SELECT outcome, cost_source, output_tokens FROM requests")
        time.sleep(0.05)
    assert rows == [("ok", "computed", 5)]
