"""A first-time user's relay, `aipipe serve --dev` with no keys, through the openai package: the
built-in demo model streams every API it answers to the end, and a stream it cannot serve is a
whole, clean error."""

from __future__ import annotations

import httpx
import openai
import pytest

from tests.clients.conftest import DevRelay, wait_for


def sdk(dev: DevRelay, email: str) -> openai.OpenAI:
    return openai.OpenAI(api_key=dev.token(email), base_url=f"{dev.url}/openai/v1", max_retries=0)


def rows(dev: DevRelay, email: str, count: int) -> list[dict]:
    found: list[dict] = []

    def recorded() -> bool:
        nonlocal found
        r = httpx.get(f"{dev.url}/usage/requests",
                      headers={"Authorization": f"Bearer {dev.token(email)}"}, timeout=10)
        found = list(reversed(r.json()["data"]))
        return len(found) >= count

    wait_for(recorded, 10, f"{count} ledger rows")
    return found


def test_stream_for_a_model_the_demo_lacks_is_a_whole_json_error(dev_relay: DevRelay) -> None:
    """A streamed request for a model the demo does not have answers a complete 404 JSON error
    (the SDK raises NotFoundError with the message), never headers and a dropped connection,
    and the relay logs no traceback."""
    client = sdk(dev_relay, "nomodel@example.com")
    with pytest.raises(openai.NotFoundError, match="Only the demo model 'aipipe-demo'"):
        for _ in client.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": "Hello"}], stream=True):
            pass
    raw = httpx.post(f"{dev_relay.url}/openai/v1/responses", timeout=10,
                     headers={"Authorization": f"Bearer {dev_relay.token('nomodel@example.com')}"},
                     json={"model": "gpt-4o-mini", "input": "Hello", "stream": True})
    assert raw.status_code == 404
    assert raw.headers["content-type"].startswith("application/json")
    assert raw.json()["error"]["code"] == "model_not_found"
    assert [r["outcome"] for r in rows(dev_relay, "nomodel@example.com", 2)] == ["error", "error"]
    assert "Traceback" not in dev_relay.process.output()


def test_streamed_responses_api_on_the_demo_completes(dev_relay: DevRelay) -> None:
    """`responses.stream()` on aipipe-demo runs to `response.completed`, and the call is
    recorded as completed (not aborted) with its computed cost."""
    client = sdk(dev_relay, "responses@example.com")
    with client.responses.stream(model="aipipe-demo", input="Show me a list") as stream:
        deltas = [e.delta for e in stream if e.type == "response.output_text.delta"]
        final = stream.get_final_response()
    assert len(deltas) > 3 and "".join(deltas) == final.output_text
    assert final.status == "completed" and final.usage is not None
    [row] = rows(dev_relay, "responses@example.com", 1)
    assert (row["outcome"], row["cost_source"], row["streamed"]) == ("ok", "computed", True)
    assert row["output_tokens"] == final.usage.output_tokens and row["cost"] > 0


def test_demo_streams_every_endpoint_it_answers(dev_relay: DevRelay) -> None:
    """Chat (streamed, read with the naive loop) and embeddings asked with `stream: true` are
    whole answers too."""
    client = sdk(dev_relay, "endpoints@example.com")
    text = "".join(chunk.choices[0].delta.content or "" for chunk in client.chat.completions.create(
        model="aipipe-demo", messages=[{"role": "user", "content": "Hi"}], stream=True))
    assert "aipipe-demo" in text or "demo" in text
    raw = httpx.post(f"{dev_relay.url}/openai/v1/embeddings", timeout=10,
                     headers={"Authorization": f"Bearer {dev_relay.token('endpoints@example.com')}"},
                     json={"model": "aipipe-demo", "input": "Hello", "stream": True})
    assert raw.status_code == 200 and raw.json()["data"][0]["embedding"]
    assert [r["outcome"] for r in rows(dev_relay, "endpoints@example.com", 2)] == ["ok", "ok"]
