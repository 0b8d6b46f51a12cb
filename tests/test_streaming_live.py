"""Streaming on a real uvicorn server: chunks reach the client as the provider sends them."""

from __future__ import annotations

import json
import time

import httpx


def test_first_chunk_arrives_before_the_upstream_ends(live) -> None:
    """With chunks 200 ms apart, the first reaches the client long before the last is sent."""
    relay, tok, _ = live
    body = {"model": "gpt-4o-mini", "stream": True, "messages": [{"role": "user", "content": "hi"}]}
    headers = {
        "authorization": f"Bearer {tok}",
        "x-fake": "slow",
        "x-fake-delay": "200",
        "x-fake-chunks": "6",
    }
    arrivals = []
    start = time.perf_counter()
    with httpx.stream(
        "POST", f"{relay}/openai/v1/chat/completions", json=body, headers=headers, timeout=30
    ) as r:
        assert r.status_code == 200
        for line in r.iter_lines():
            if line.startswith("data: {"):
                arrivals.append(time.perf_counter() - start)
    assert len(arrivals) >= 6
    total = arrivals[-1]
    assert total > 1.0  # the upstream really was slow
    assert arrivals[0] < total - 0.8  # ...and the first chunk did not wait for it


def test_client_that_leaves_mid_stream_is_still_recorded(live) -> None:
    """An aborted stream records an estimated, non-zero cost with outcome 'aborted'."""
    relay, tok, app = live
    body = {
        "model": "gpt-4o-mini",
        "stream": True,
        "messages": [{"role": "user", "content": "tell me"}],
    }
    headers = {
        "authorization": f"Bearer {tok}",
        "x-fake": "slow",
        "x-fake-delay": "200",
        "x-fake-chunks": "20",
    }
    with httpx.stream(
        "POST", f"{relay}/openai/v1/chat/completions", json=body, headers=headers, timeout=30
    ) as r:
        for line in r.iter_lines():
            if (
                line.startswith("data: {")
                and "content" in json.loads(line[6:])["choices"][0]["delta"]
            ):
                break  # leave after the first content chunk
    store = app.state.store
    deadline = time.monotonic() + 10
    rows = []
    while time.monotonic() < deadline:
        rows = store.query("SELECT outcome, cost, cost_source, streamed FROM requests")
        if rows:
            break
        time.sleep(0.05)
    assert len(rows) == 1
    outcome, cost, source, streamed = rows[0]
    assert outcome == "aborted" and streamed is True
    assert cost > 0 and source == "estimated"
