"""Forwarding through the relay to the fake providers: keys, headers, bodies, costs, ledger."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from relay.costing.pricing import PriceTable
from relay.forward.passthrough import KeyMasker
from testkit.fakes.upstream import DEFAULT_KEYS
from tests.conftest import auth, provider_part, with_settings
from tests.fake_port import FAKES

M = Decimal(1_000_000)


def chat(model: str = "gpt-4o-mini", **extra) -> dict:
    return {"model": model, "messages": [{"role": "user", "content": "say hello to me"}], **extra}


def ledger(client) -> list[dict]:
    rows = client.app.state.store.query(
        "SELECT email, provider, path, model, status, outcome, input_tokens, output_tokens, cost, "
        "cost_source, streamed FROM requests ORDER BY ts"
    )
    keys = (
        "email",
        "provider",
        "path",
        "model",
        "status",
        "outcome",
        "input_tokens",
        "output_tokens",
        "cost",
        "cost_source",
        "streamed",
    )
    return [dict(zip(keys, r, strict=True)) for r in rows]


def table_cost(provider: str, model: str, inp: int, out: int) -> Decimal:
    price = PriceTable.load().lookup(provider, model)
    assert price is not None and price.input is not None and price.output is not None
    return (inp * price.input + out * price.output) / M


def test_operator_key_replaces_token_and_private_headers_are_dropped(
    client, token, upstream
) -> None:
    """The provider sees the operator's key, never the caller's token, cookies, Host or hop-by-hop."""
    tok = token()
    r = client.post(
        "/openai/v1/chat/completions",
        json=chat(),
        headers={
            **auth(tok),
            "Cookie": "session=abc",
            "Connection": "keep-alive, x-secret",
            "X-Forwarded-For": "10.0.0.1",
            "OpenAI-Beta": "assistants=v2",
        },
    )
    assert r.status_code == 200, r.text
    seen = upstream.state.received[-1]
    assert seen["path"] == "/openai/v1/chat/completions"
    assert seen["headers"]["authorization"] == "Bearer sk-test-openai"
    assert "cookie" not in seen["headers"]
    assert "x-forwarded-for" not in seen["headers"]
    assert seen["headers"]["host"] == FAKES.url.removeprefix("http://")
    assert seen["headers"]["openai-beta"] == "assistants=v2"  # provider headers pass
    assert tok not in json.dumps(seen["headers"]) and tok.encode() not in seen["body"]


@pytest.mark.parametrize("name,value", [
    ("OpenAI-Organization", "org-someone-elses"), ("OpenAI-Project", "proj_other"),
    ("True-Client-IP", "10.1.2.3"), ("Via", "1.1 attacker"), ("X-Client-IP", "10.1.2.3"),
    ("Client-IP", "10.1.2.3"), ("X-Cluster-Client-IP", "10.1.2.3"),
    ("Fastly-Client-IP", "10.1.2.3"), ("X-Original-Forwarded-For", "10.1.2.3"),
    ("X-Goog-User-Project", "other-project"),
])
def test_headers_that_bill_or_identify_never_reach_the_provider(client, token, upstream, name,
                                                                 value) -> None:
    """Headers that would pick which of the operator's accounts pays (OpenAI organization or
    project, Google's quota project) or name the client's network are not forwarded."""
    path = "/geminiv1beta/models/gemini-2.5-flash:generateContent" if "Goog" in name else \
        "/openai/v1/chat/completions"
    body = {"contents": [{"parts": [{"text": "hi"}]}]} if "Goog" in name else chat()
    r = client.post(path, json=body, headers={**auth(token()), name: value})
    assert r.status_code == 200, r.text
    sent = upstream.state.received[-1]["headers"]
    assert name.lower() not in sent and value not in json.dumps(sent)


def test_provider_account_headers_are_not_passed_back(client, token, upstream) -> None:
    """OpenAI names the operator's organization and project in its answers: the relay keeps
    them to itself (other provider headers pass), buffered or streamed."""
    for stream in (False, True):
        r = client.post("/openai/v1/chat/completions", json=chat(stream=stream),
                        headers=auth(token()))
        assert r.status_code == 200
        assert "openai-organization" not in r.headers and "openai-project" not in r.headers
        assert "org-fake-operator" not in r.text
        assert r.headers["openai-processing-ms"] == "7"


def test_chat_is_priced_from_the_table_and_recorded(client, token, upstream) -> None:
    """A JSON chat completion costs usage x table price; headers and ledger say so."""
    r = client.post("/openai/v1/chat/completions", json=chat(), headers=auth(token()))
    usage = r.json()["usage"]
    expected = table_cost(
        "openai", "gpt-4o-mini", usage["prompt_tokens"], usage["completion_tokens"]
    )
    assert Decimal(r.headers["x-aipipe-cost"]) == expected.quantize(Decimal("1e-8"))
    assert r.headers["x-aipipe-cost-source"] == "computed"
    assert "x-aipipe-cost" in r.headers["access-control-expose-headers"]
    [row] = ledger(client)
    assert row["cost"] == expected and row["cost_source"] == "computed"
    assert (row["email"], row["provider"], row["model"], row["status"]) == (
        "student@example.com",
        "openai",
        "gpt-4o-mini",
        200,
    )
    assert client.get("/usage", headers=auth(token())).json()["cost"] == float(expected)


def test_dated_model_name_is_priced_as_its_base(client, token) -> None:
    """gpt-4o-mini-2024-07-18 is not free: it is priced as gpt-4o-mini."""
    r = client.post(
        "/openai/v1/chat/completions", json=chat("gpt-4o-mini-2024-07-18"), headers=auth(token())
    )
    assert r.status_code == 200
    assert Decimal(r.headers["x-aipipe-cost"]) > 0
    assert ledger(client)[0]["cost_source"] == "computed"


def test_unpriced_openai_model_is_refused_before_the_provider(client, token, upstream) -> None:
    """An OpenAI model with no price answers 400 and never reaches the provider."""
    r = client.post(
        "/openai/v1/chat/completions", json=chat("mystery-model-9"), headers=auth(token())
    )
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "model_not_priced"
    assert r.json()["message"] == r.json()["error"]["message"]
    assert upstream.state.received == []


def test_streamed_chat_asks_for_usage_and_passes_bytes_unchanged(client, token, upstream) -> None:
    """The relay injects stream_options.include_usage, forwards the SSE as is, and costs it."""
    r = client.post("/openai/v1/chat/completions", json=chat(stream=True), headers=auth(token()))
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/event-stream")
    sent = json.loads(upstream.state.received[-1]["body"])
    assert sent["stream_options"] == {"include_usage": True}
    assert provider_part(r.text).endswith("data: [DONE]")
    billed = upstream.state.billed[-1]["usage"]
    [row] = ledger(client)
    assert row["streamed"] is True and row["cost_source"] == "computed"
    assert row["cost"] == table_cost(
        "openai", "gpt-4o-mini", billed["prompt_tokens"], billed["completion_tokens"]
    )


def test_openrouter_reported_cost_is_used(client, token, upstream) -> None:
    """OpenRouter's own usage.cost is what is recorded, marked reported."""
    r = client.post(
        "/openrouter/v1/chat/completions", json=chat("openai/gpt-4o-mini"), headers=auth(token())
    )
    assert r.status_code == 200, r.text
    reported = Decimal(str(r.json()["usage"]["cost"]))
    [row] = ledger(client)
    assert row["cost"] == reported and row["cost_source"] == "reported"


def test_openrouter_without_cost_uses_models_prices(client, token) -> None:
    """When OpenRouter reports no cost, tokens x its /models prices are used."""
    r = client.post(
        "/openrouter/v1/chat/completions", json=chat("test/nocost-model"), headers=auth(token())
    )
    usage = r.json()["usage"]
    assert "cost" not in usage
    [row] = ledger(client)
    expected = (
        Decimal("0.000001") * usage["prompt_tokens"]
        + Decimal("0.000002") * usage["completion_tokens"]
    )
    assert row["cost"] == expected and row["cost_source"] == "computed"


def test_gemini_key_goes_in_x_goog_api_key(client, token, upstream) -> None:
    """Gemini gets the operator key as x-goog-api-key; the caller's ?key= token is not forwarded."""
    tok = token()
    r = client.post(
        f"/geminiv1beta/models/gemini-2.5-flash:generateContent?key={tok}",
        json={"contents": [{"parts": [{"text": "hello there"}]}]},
    )
    assert r.status_code == 200, r.text
    seen = upstream.state.received[-1]
    assert seen["headers"]["x-goog-api-key"] == "AIza-test-gemini"
    assert tok not in seen["query"]
    [row] = ledger(client)
    assert row["model"] == "gemini-2.5-flash" and row["cost"] > 0


def test_native_provider_key_passes_through_without_budget(client, upstream) -> None:
    """A caller's own sk- key goes straight to the provider; nothing is recorded."""
    r = client.post(
        "/openai/v1/chat/completions", json=chat("mystery-model-9"), headers=auth("sk-test-openai")
    )
    assert r.status_code == 200
    assert upstream.state.received[-1]["headers"]["authorization"] == "Bearer sk-test-openai"
    assert ledger(client) == []
    assert client.get("/usage", headers=auth("sk-test-openai")).status_code == 401


def test_native_keys_off_refuses_provider_keys(make_client, settings, upstream) -> None:
    """AIPIPE_NATIVE_KEYS=off: a caller's provider key is refused with 401 and never reaches a
    provider (for upstreams that do not check keys, e.g. a self-hosted server)."""
    client = make_client(with_settings(settings, native_keys=False))
    r = client.post("/openai/v1/chat/completions", json=chat(), headers=auth("sk-anything"))
    assert r.status_code == 401 and r.json()["error"]["code"] == "native_keys_refused"
    assert upstream.state.received == []


def test_upstream_errors_pass_through_unchanged(client, token) -> None:
    """A provider's error body and status reach the client as the provider wrote them."""
    r = client.post(
        "/openai/v1/chat/completions", json=chat(), headers={**auth(token()), "x-fake": "error429"}
    )
    assert r.status_code == 429
    assert "error" in r.json() and "message" not in r.json()  # the provider's shape, not ours
    assert ledger(client)[0]["outcome"] == "error"


def test_leaked_key_in_provider_error_is_masked(client, token) -> None:
    """If a provider quotes the key it was sent, the client sees it masked."""
    r = client.post(
        "/openai/v1/chat/completions", json=chat(), headers={**auth(token()), "x-fake": "leakkey"}
    )
    assert r.status_code == 400
    assert "sk-test-openai" not in r.text
    assert "sk-t****ai" in r.text


def test_embeddings_and_responses_are_priced(client, token) -> None:
    """Embeddings and the Responses API record computed costs."""
    tok = token()
    r1 = client.post(
        "/openai/v1/embeddings",
        json={"model": "text-embedding-3-small", "input": ["a b", "c"]},
        headers=auth(tok),
    )
    r2 = client.post(
        "/openai/v1/responses",
        json={"model": "gpt-4o-mini", "input": "hi there"},
        headers=auth(tok),
    )
    assert r1.status_code == r2.status_code == 200
    rows = ledger(client)
    assert [r["path"] for r in rows] == ["/v1/embeddings", "/v1/responses"]
    assert all(r["cost"] > 0 and r["cost_source"] == "computed" for r in rows)


def test_multipart_upload_is_forwarded_intact(client, token, upstream) -> None:
    """Audio transcription: the multipart body reaches the provider byte for byte."""
    audio = bytes(range(256)) * 40
    r = client.post(
        "/openai/v1/audio/transcriptions",
        files={"file": ("a.mp3", audio, "audio/mpeg")},
        data={"model": "whisper-1"},
        headers=auth(token()),
    )
    assert r.status_code == 200, r.text
    assert audio in upstream.state.received[-1]["body"]
    assert ledger(client)[0]["model"] == "whisper-1"


def test_binary_speech_response_streams_back(client, token) -> None:
    """Text-to-speech returns audio bytes unchanged and is recorded."""
    r = client.post(
        "/openai/v1/audio/speech",
        json={"model": "tts-1", "input": "hello world", "voice": "alloy"},
        headers=auth(token()),
    )
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("audio/")
    assert len(r.content) > 0
    assert ledger(client)[0]["cost"] > 0


def test_similarity_embeds_each_text_once(client, token, upstream) -> None:
    """/similarity sends one embeddings call with each distinct text once, and answers a matrix."""
    r = client.post(
        "/similarity",
        json={"docs": ["a", "b", "a"], "topics": ["b", "c"], "precision": 3},
        headers=auth(token()),
    )
    assert r.status_code == 200, r.text
    body = r.json()
    sent = json.loads(upstream.state.received[-1]["body"])
    assert sorted(sent["input"]) == ["a", "b", "c"]
    assert len(body["similarity"]) == 3 and len(body["similarity"][0]) == 2
    assert body["similarity"][0] == body["similarity"][2]
    assert body["similarity"][1][0] == 1.0  # "b" against itself
    assert body["usage"]["prompt_tokens"] > 0
    assert ledger(client)[0]["path"] == "/v1/embeddings"


def test_free_endpoints_cost_nothing(client, token) -> None:
    """Model lists are free and marked so; they do not need a priced model."""
    r = client.get("/openai/v1/models", headers=auth(token()))
    assert r.status_code == 200
    [row] = ledger(client)
    assert row["cost"] == 0 and row["cost_source"] == "free"


def test_shared_account_reads_and_deletes_are_refused(client, token, upstream) -> None:
    """Files, batches and stored responses live on the operator's one account: a user must not
    list, read or delete another user's, so the relay refuses them (native keys still work)."""
    for method, path in (
        ("GET", "/openai/v1/files"),
        ("GET", "/openai/v1/files/file-abc/content"),
        ("DELETE", "/openai/v1/files/file-abc"),
        ("GET", "/openai/v1/responses/resp_123"),
        ("GET", "/openai/v1/batches"),
    ):
        r = client.request(method, path, headers=auth(token()))
        assert r.status_code == 400, (method, path)
        assert r.json()["error"]["code"] == "unsupported_endpoint"
    assert upstream.state.received == []
    assert client.get("/openai/v1/models", headers=auth(token())).status_code == 200
    one = client.get("/openai/v1/models/gpt-4o-mini", headers=auth(token()))
    assert upstream.state.received[-1]["path"] == "/openai/v1/models/gpt-4o-mini"  # forwarded
    assert one.status_code != 400
    assert client.get("/geminiv1beta/models", headers=auth(token())).status_code == 200


@pytest.mark.parametrize("split", range(0, 60))
def test_a_key_split_anywhere_across_chunks_is_masked(split) -> None:
    """The stream masker masks a key however the stream is cut, and gives back every other
    byte unchanged and in order."""
    key = DEFAULT_KEYS["openai"]
    text = f'data: {{"error": "bad key {key} (sk-t is a prefix)"}}\n\ndata: [DONE]\n\n'.encode()
    masker = KeyMasker([key, DEFAULT_KEYS["gemini"]])
    out = masker.feed(text[:split]) + masker.feed(text[split:]) + masker.close()
    assert out == text.replace(key.encode(), b"sk-t****ai")
    assert masker.feed(b"data: {}\n\n") == b"data: {}\n\n"  # an event's end is never held back
