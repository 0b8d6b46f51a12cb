"""The fakes speak the providers' protocols faithfully enough for the relay's tests to trust."""

from __future__ import annotations

import base64
import json
import struct
import time
from decimal import Decimal
from typing import Any

import google.auth.exceptions
import google.auth.jwt
import httpx
import pytest
from starlette.testclient import TestClient

from testkit.fakes import DEFAULT_KEYS, FakeGoogle, create_fake_upstream, reset, serve_asgi

OPENAI = {"authorization": f"Bearer {DEFAULT_KEYS['openai']}"}
OPENROUTER = {"authorization": f"Bearer {DEFAULT_KEYS['openrouter']}"}
GEMINI = {"x-goog-api-key": DEFAULT_KEYS["gemini"]}
CHAT = {"model": "gpt-4o-mini-2024-07-18",
        "messages": [{"role": "user", "content": "say hello to me"}]}


@pytest.fixture
def upstream() -> Any:
    return create_fake_upstream()


@pytest.fixture
def client(upstream: Any) -> TestClient:
    return TestClient(upstream)


def sse_data(text: str) -> list[str]:
    """The `data:` payloads of an SSE body, whatever the line endings."""
    events = text.replace("\r\n", "\n").split("\n\n")
    return [line[6:] for ev in events for line in ev.split("\n") if line.startswith("data: ")]


def test_chat_json_usage_shape_and_dated_model(client: TestClient, upstream: Any) -> None:
    """A plain chat call echoes the dated model and reports OpenAI's documented usage shape."""
    r = client.post("/openai/v1/chat/completions", json=CHAT, headers=OPENAI)
    assert r.status_code == 200
    body = r.json()
    assert body["model"] == "gpt-4o-mini-2024-07-18"
    assert body["choices"][0]["message"]["content"] == "Hello from the fake upstream"
    usage = body["usage"]
    assert (usage["prompt_tokens"], usage["completion_tokens"], usage["total_tokens"]) == (4, 5, 9)
    assert usage["prompt_tokens_details"]["cached_tokens"] == 0
    assert usage["completion_tokens_details"]["reasoning_tokens"] == 0
    assert upstream.state.billed == [{"provider": "openai", "model": "gpt-4o-mini-2024-07-18",
                                      "path": "v1/chat/completions", "stream": False,
                                      "usage": usage, "cost": None}]


def test_chat_stream_include_usage_ends_with_usage_chunk(client: TestClient) -> None:
    """With include_usage the last chunk before [DONE] has no choices and carries usage."""
    payload = {**CHAT, "stream": True, "stream_options": {"include_usage": True}}
    r = client.post("/openai/v1/chat/completions", json=payload,
                    headers={**OPENAI, "x-fake-chunks": "3"})
    assert r.headers["content-type"].startswith("text/event-stream")
    data = sse_data(r.text)
    assert data[-1] == "[DONE]"
    last = json.loads(data[-2])
    assert last["choices"] == [] and last["usage"]["completion_tokens"] == 3
    chunks = [json.loads(d) for d in data[:-2]]
    assert all(c["usage"] is None for c in chunks)
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in chunks) == "Hello from the"


def test_chat_stream_without_include_usage_has_no_usage(client: TestClient, upstream: Any) -> None:
    """OpenAI sends no usage in a stream unless asked, and the billing record says so."""
    r = client.post("/openai/v1/chat/completions", json={**CHAT, "stream": True}, headers=OPENAI)
    assert all("usage" not in json.loads(d) for d in sse_data(r.text)[:-1])
    assert upstream.state.billed[-1]["usage"] == {}


def test_openrouter_cost_matches_its_model_prices(client: TestClient) -> None:
    """OpenRouter's usage.cost is exactly tokens × the prices its /models list publishes."""
    prices = {m["id"]: m["pricing"] for m in client.get("/openrouter/v1/models").json()["data"]}
    r = client.post("/openrouter/v1/chat/completions", headers=OPENROUTER,
                    json={**CHAT, "model": "openai/gpt-4o-mini"})
    usage = r.json(parse_float=Decimal)["usage"]
    p = prices["openai/gpt-4o-mini"]
    expected = (Decimal(p["prompt"]) * usage["prompt_tokens"]
                + Decimal(p["completion"]) * usage["completion_tokens"])
    assert usage["cost"] == expected != 0


def test_openrouter_stream_usage_on_last_chunk_and_nocost(client: TestClient) -> None:
    """OpenRouter streams usage on its last chunk unasked; `nocost` models omit the cost."""
    r = client.post("/openrouter/v1/chat/completions", headers=OPENROUTER,
                    json={**CHAT, "model": "test/nocost-model", "stream": True})
    data = sse_data(r.text)
    usage = json.loads(data[-2])["usage"]
    assert usage["completion_tokens"] == 5 and "cost" not in usage


def test_responses_stream_typed_events(client: TestClient) -> None:
    """The Responses API streams typed events ending in response.completed with full usage."""
    r = client.post("/openai/v1/responses", headers=OPENAI,
                    json={"model": "o4-mini", "input": "two words", "stream": True})
    events = [line[7:] for line in r.text.split("\n") if line.startswith("event: ")]
    assert events[0] == "response.created" and events[-1] == "response.completed"
    assert events.count("response.output_text.delta") == 5
    usage = json.loads(sse_data(r.text)[-1])["response"]["usage"]
    assert usage["input_tokens"] == 2
    assert usage["output_tokens_details"]["reasoning_tokens"] == 10  # o-series reasons
    assert usage["output_tokens"] == 15 and usage["input_tokens_details"]["cached_tokens"] == 0


def test_embeddings_deterministic_float_and_base64(client: TestClient) -> None:
    """Same text, same 8-dim vector; base64 encoding (the SDK default) decodes to the floats."""
    r1 = client.post("/openai/v1/embeddings", headers=OPENAI,
                     json={"model": "text-embedding-3-small", "input": ["a b", "c"]}).json()
    r2 = client.post("/openai/v1/embeddings", headers=OPENAI,
                     json={"model": "text-embedding-3-small", "input": "a b",
                           "encoding_format": "base64"}).json()
    vec = r1["data"][0]["embedding"]
    assert len(vec) == 8 and r1["usage"]["prompt_tokens"] == 3
    decoded = struct.unpack("<8f", base64.b64decode(r2["data"][0]["embedding"]))
    assert decoded == pytest.approx(vec, rel=1e-6)
    assert r1["data"][1]["embedding"] != vec


def test_transcription_multipart_and_speech_bytes(client: TestClient) -> None:
    """Transcription takes multipart (duration usage for whisper-1); speech answers audio bytes."""
    r = client.post("/openai/v1/audio/transcriptions", headers=OPENAI,
                    files={"file": ("a.wav", b"\0" * 64000, "audio/wav")},
                    data={"model": "whisper-1"})
    assert r.json()["usage"] == {"type": "duration", "seconds": 2}
    r = client.post("/openai/v1/audio/transcriptions", headers=OPENAI,
                    files={"file": ("a.wav", b"\0" * 100, "audio/wav")},
                    data={"model": "gpt-4o-transcribe"})
    assert r.json()["usage"]["input_token_details"]["audio_tokens"] == 10
    r = client.post("/openai/v1/audio/speech", headers=OPENAI,
                    json={"model": "tts-1", "input": "hi", "voice": "alloy"})
    assert r.headers["content-type"] == "audio/mpeg" and r.content.startswith(b"ID3")


def test_auth_errors_use_each_providers_shape(client: TestClient) -> None:
    """Wrong or missing keys get 401 in each provider's own error shape."""
    r = client.post("/openai/v1/chat/completions", json=CHAT,
                    headers={"authorization": "Bearer sk-wrong-key-1234"})
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "invalid_api_key"
    assert "sk-wr****1234" in r.json()["error"]["message"]
    r = client.post("/openrouter/v1/chat/completions", json=CHAT)
    assert (r.status_code, r.json()["error"]["code"]) == (401, 401)
    r = client.post("/gemini/models/gemini-2.5-flash:generateContent?key=AIza-wrong", json={})
    assert (r.status_code, r.json()["error"]["status"]) == (401, "UNAUTHENTICATED")


def test_gemini_json_array_stream_with_cumulative_usage(client: TestClient) -> None:
    """Without alt=sse Gemini streams one JSON array whose elements carry cumulative usage."""
    body = {"contents": [{"role": "user", "parts": [{"text": "one two three"}]}]}
    r = client.post("/gemini/models/gemini-2.5-flash:streamGenerateContent", json=body,
                    headers=GEMINI)
    items = r.json()
    assert isinstance(items, list) and len(items) == 5
    counts = [i["usageMetadata"]["candidatesTokenCount"] for i in items]
    assert counts == [1, 2, 3, 4, 5]
    last = items[-1]["usageMetadata"]
    assert last["promptTokenCount"] == 3 and last["thoughtsTokenCount"] == 10
    assert last["totalTokenCount"] == 3 + 5 + 10
    assert items[-1]["candidates"][0]["finishReason"] == "STOP"


def test_gemini_sse_stream_and_key_in_query(client: TestClient) -> None:
    """With alt=sse Gemini sends CRLF-separated `data:` events; `?key=` authenticates."""
    key = GEMINI["x-goog-api-key"]
    url = f"/gemini/models/gemini-2.0-flash:streamGenerateContent?alt=sse&key={key}"
    r = client.post(url, json={"contents": [{"parts": [{"text": "hi"}]}]})
    assert "\r\n\r\n" in r.text
    events = [json.loads(d) for d in sse_data(r.text)]
    assert len(events) == 5 and "thoughtsTokenCount" not in events[-1]["usageMetadata"]


def test_behaviours_by_header_and_model_name(client: TestClient) -> None:
    """x-fake header and model-name words both trigger errors, key leaks and missing usage."""
    url = "/openai/v1/chat/completions"
    r = client.post(url, json=CHAT, headers={**OPENAI, "x-fake": "error429"})
    assert r.status_code == 429 and r.json()["error"]["code"] == "rate_limit_exceeded"
    r = client.post("/gemini/models/gemini-error500:generateContent", json={}, headers=GEMINI)
    assert r.status_code == 500 and r.json()["error"]["status"] == "INTERNAL"
    r = client.post("/openai/v1/chat/completions", json={**CHAT, "model": "gpt-leakkey"},
                    headers=OPENAI)
    assert r.status_code == 400 and DEFAULT_KEYS["openai"] in r.text
    r = client.post(url, json=CHAT, headers={**OPENAI, "x-fake": "nousage"})
    assert r.status_code == 200 and "usage" not in r.json()


def test_received_records_requests_and_reset(client: TestClient, upstream: Any) -> None:
    """Every request is recorded (path, query, lower-case headers, body); reset() forgets them."""
    client.post("/openai/v1/chat/completions?x=1", json=CHAT, headers={**OPENAI, "X-Extra": "y"})
    rec = upstream.state.received[-1]
    assert rec["path"] == "/openai/v1/chat/completions" and rec["query"] == "x=1"
    assert rec["headers"]["x-extra"] == "y" and json.loads(rec["body"]) == CHAT
    reset(upstream)
    assert upstream.state.received == [] and upstream.state.billed == []


def test_real_server_streams_slowly_and_breaks() -> None:
    """On a real port `slow` spaces chunks out, `break` drops the connection, `silent` hangs."""
    app = create_fake_upstream()
    payload = {**CHAT, "stream": True}
    with serve_asgi(app) as base, httpx.Client(base_url=base, headers=OPENAI) as http:
        arrivals = []
        start = time.monotonic()
        with http.stream("POST", "/openai/v1/chat/completions", json=payload,
                         headers={"x-fake": "slow", "x-fake-delay": "50"}) as r:
            for _ in r.iter_raw():
                arrivals.append(time.monotonic() - start)
        assert arrivals[-1] - arrivals[0] >= 0.25  # 7 pieces, 50 ms apart
        with pytest.raises(httpx.RemoteProtocolError), http.stream(
                "POST", "/openai/v1/chat/completions", json=payload,
                headers={"x-fake": "break"}) as r:
            r.read()
        assert len(app.state.billed) == 1  # the broken stream was not billed
        with pytest.raises(httpx.ReadTimeout):
            http.post("/openai/v1/chat/completions", json=CHAT, headers={"x-fake": "silent"},
                      timeout=0.3)


def test_google_token_verifies_against_served_certs() -> None:
    """An ID token verifies with google-auth against the served certs; a forged one does not."""
    fake = FakeGoogle()
    with serve_asgi(fake.certs_app()) as base:
        certs = httpx.get(f"{base}/oauth2/v1/certs").json()
    assert fake.cert_fetches == 1
    token = fake.id_token("ada@example.com", name="Ada")
    claims = google.auth.jwt.decode(token, certs=certs, audience=fake.client_id)
    assert claims["email"] == "ada@example.com" and claims["email_verified"] is True
    assert claims["iss"] == "https://accounts.google.com" and claims["name"] == "Ada"
    forged = fake.id_token("ada@example.com", key=fake.untrusted_key)
    with pytest.raises(ValueError):
        google.auth.jwt.decode(forged, certs=certs, audience=fake.client_id)
    expired = fake.id_token("ada@example.com", exp_in=-3600)
    with pytest.raises((ValueError, google.auth.exceptions.GoogleAuthError)):
        google.auth.jwt.decode(expired, certs=certs, audience=fake.client_id)


def test_official_openai_sdk_reads_the_fake() -> None:
    """The openai SDK parses the fake's stream usage, base64 embeddings and transcription usage."""
    import openai

    with serve_asgi(create_fake_upstream()) as base:
        sdk = openai.OpenAI(base_url=f"{base}/openai/v1", api_key=DEFAULT_KEYS["openai"],
                            max_retries=0)
        chunks = list(sdk.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], stream=True,
            stream_options={"include_usage": True}))
        assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 5
        emb = sdk.embeddings.create(model="text-embedding-3-small", input="a b")
        assert len(emb.data[0].embedding) == 8 and emb.usage.prompt_tokens == 2
        text = sdk.audio.transcriptions.create(model="whisper-1", file=("a.wav", b"\0" * 40000))
        assert text.usage is not None and text.usage.type == "duration"
        with pytest.raises(openai.AuthenticationError):
            sdk.with_options(api_key="sk-not-the-key").models.list()
