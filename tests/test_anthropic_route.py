"""`/anthropic/…` forwards Anthropic's Messages API: the AI Pipe token as `x-api-key` or Bearer,
the operator's key sent as `x-api-key` (the caller's never), `anthropic-version` and
`anthropic-beta` kept, messages priced exactly (JSON and streams), counting tokens and listing
models free, and everything the relay cannot price refused before the provider is called."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from testkit.fakes.protocol import DEFAULT_KEYS
from tests.conftest import auth, provider_part
from tests.test_proxy import ledger, table_cost

MESSAGES = "/anthropic/v1/messages"
MODEL = "claude-sonnet-4-5-20250929"
VERSION = {"anthropic-version": "2023-06-01"}
OPERATOR = DEFAULT_KEYS["anthropic"]


def ask(**extra: object) -> dict:
    return {"model": MODEL, "max_tokens": 100,
            "messages": [{"role": "user", "content": "say hello to me"}], **extra}


def api_key(tok: str) -> dict[str, str]:
    return {"x-api-key": tok, **VERSION}


def test_a_token_as_x_api_key_is_swapped_for_the_operators_key(client, token, upstream) -> None:
    """The anthropic SDK's way: the token in `x-api-key`. The provider gets exactly one
    `x-api-key`, the operator's, and the client's version and beta headers."""
    tok = token()
    headers = {**api_key(tok), "anthropic-beta": "interleaved-thinking-2025-05-14"}
    r = client.post(MESSAGES, json=ask(), headers=headers)
    assert r.status_code == 200, r.text
    seen = upstream.state.received[-1]
    assert seen["path"] == "/anthropic/v1/messages"
    keys = [v for k, v in seen["header_list"] if k in ("x-api-key", "authorization")]
    assert keys == [OPERATOR]
    assert seen["headers"]["anthropic-version"] == "2023-06-01"
    assert seen["headers"]["anthropic-beta"] == "interleaved-thinking-2025-05-14"
    assert tok not in json.dumps(seen["header_list"]) and tok.encode() not in seen["body"]


def test_a_bearer_token_works_and_a_callers_x_api_key_never_goes_upstream(
    client, token, upstream
) -> None:
    """Claude Code's way (`ANTHROPIC_AUTH_TOKEN`): `Authorization: Bearer`. An `x-api-key` the
    caller sends as well is dropped, not forwarded beside the operator's."""
    r = client.post(MESSAGES, json=ask(),
                    headers={**auth(token()), **VERSION, "x-api-key": "sk-ant-someone-elses"})
    assert r.status_code == 200, r.text
    sent = upstream.state.received[-1]["header_list"]
    assert [v for k, v in sent if k in ("x-api-key", "authorization")] == [OPERATOR]


def test_a_message_is_priced_exactly_with_cost_headers(client, token) -> None:
    """A JSON message costs its usage at the table's Claude prices; headers and ledger agree."""
    r = client.post(MESSAGES, json=ask(), headers=api_key(token()))
    usage = r.json()["usage"]
    expected = table_cost("anthropic", MODEL, usage["input_tokens"], usage["output_tokens"])
    assert Decimal(r.headers["x-aipipe-cost"]) == expected.quantize(Decimal("1e-8"))
    assert r.headers["x-aipipe-cost-source"] == "computed"
    assert "x-aipipe-remaining" in r.headers
    [row] = ledger(client)
    assert (row["provider"], row["model"], row["path"], row["streamed"]) == (
        "anthropic", MODEL, "/v1/messages", False)
    assert (row["input_tokens"], row["output_tokens"]) == (usage["input_tokens"],
                                                           usage["output_tokens"])
    assert row["cost"] == expected and row["cost_source"] == "computed"


def test_cache_reads_are_priced_at_the_cache_price(client, token) -> None:
    """A cached prompt: reads bill at the cache-read price, the rest at the input price."""
    r = client.post(MESSAGES, json=ask(), headers={**api_key(token()), "x-fake": "cached"})
    usage = r.json()["usage"]
    assert usage["cache_read_input_tokens"] > 0
    expected = (usage["input_tokens"] * Decimal("3") + usage["cache_read_input_tokens"]
                * Decimal("0.3") + usage["output_tokens"] * Decimal("15")) / 1_000_000
    [row] = ledger(client)
    assert row["cost"] == expected
    assert row["input_tokens"] == usage["input_tokens"] + usage["cache_read_input_tokens"]


def test_a_stream_passes_unchanged_and_is_priced_from_its_events(client, token) -> None:
    """The event sequence reaches the client byte for byte (then the relay's `: aipipe` cost
    comment); the cost is message_start's input and message_delta's output at the table."""
    r = client.post(MESSAGES, json=ask(stream=True), headers=api_key(token()))
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    events = provider_part(r.text)
    assert events.startswith("event: message_start\n")
    assert events.endswith('event: message_stop\ndata: {"type": "message_stop"}')
    assert "event: ping" in events
    info = json.loads(r.text.split("\n: aipipe ", 1)[1])
    [row] = ledger(client)
    expected = table_cost("anthropic", MODEL, row["input_tokens"], 5)
    assert (row["output_tokens"], row["streamed"], row["cost"]) == (5, True, expected)
    assert (info["cost_source"], Decimal(info["cost"])) == ("computed",
                                                            expected.quantize(Decimal("1e-8")))


def test_a_broken_stream_ends_with_an_anthropic_error_event_and_is_charged(client, token) -> None:
    """The provider drops the connection mid-stream: the client gets an `event: error` in
    Anthropic's shape (its SDKs skip unnamed events, and raise this one), and the call is
    charged from message_start's input and the text that did arrive."""
    r = client.post(MESSAGES, json=ask(stream=True), headers={**api_key(token()), "x-fake": "break"})
    assert r.status_code == 200
    tail = provider_part(r.text).rsplit("\n\n", 1)[-1]
    name, data = tail.split("\n", 1)
    assert name == "event: error"
    error = json.loads(data.removeprefix("data: "))
    assert error["type"] == "error" and error["error"]["type"] == "api_error"
    [row] = ledger(client)
    assert (row["outcome"], row["cost_source"]) == ("broken", "estimated") and row["cost"] > 0


def test_counting_tokens_and_listing_models_are_free(client, token) -> None:
    """`POST /v1/messages/count_tokens` and `GET /v1/models` cost nothing and are recorded so."""
    tok = token()
    counted = client.post("/anthropic/v1/messages/count_tokens", headers=api_key(tok),
                          json={"model": MODEL, "messages": [{"role": "user", "content": "hi"}]})
    assert counted.status_code == 200 and counted.json()["input_tokens"] >= 1
    assert counted.headers["x-aipipe-cost-source"] == "free"
    listed = client.get("/anthropic/v1/models", headers=api_key(tok))
    assert listed.status_code == 200 and listed.json()["data"]
    assert [(r["cost"], r["cost_source"]) for r in ledger(client)] == [(0, "free"), (0, "free")]


@pytest.mark.parametrize("method,path", [
    ("POST", "/v1/messages/batches"),  # deferred: answered later, on the operator's account
    ("GET", "/v1/messages/batches"),
    ("GET", "/v1/messages/batches/msgbatch_1/results"),
    ("POST", "/v1/files"),  # stored on the operator's account, shared by every user
    ("GET", "/v1/files"),
    ("DELETE", "/v1/files/file_1"),
    ("POST", "/v1/complete"),  # the legacy Text Completions: no output cap the relay reads
    ("POST", "/v1/skills"),
])
def test_batches_files_and_unpriced_endpoints_are_refused(client, token, upstream, method,
                                                         path) -> None:
    """What the relay cannot price or would share between users is refused (400) before the
    provider is called."""
    r = client.request(method, "/anthropic" + path, headers=api_key(token()),
                       json={"requests": []} if method == "POST" else None)
    assert r.status_code == 400 and r.json()["error"]["code"] == "unsupported_endpoint"
    assert upstream.state.received == []


def test_a_message_without_max_tokens_is_refused(client, token, upstream) -> None:
    """Anthropic requires max_tokens; the relay refuses its absence too (400) rather than
    invent a maximum the client never asked for, so code tried through AI Pipe behaves as it
    will against Anthropic."""
    body = ask()
    del body["max_tokens"]
    r = client.post(MESSAGES, json=body, headers=api_key(token()))
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_max_tokens"
    assert "max_tokens is required" in r.json()["message"]
    assert upstream.state.received == [] and ledger(client) == []


@pytest.mark.parametrize("field,value", [("speed", "fast"), ("inference_geo", "us")])
def test_options_billed_above_the_price_table_are_refused(client, token, upstream, field,
                                                          value) -> None:
    """Fast mode (several times the price) and US-only inference (1.1x) cost more than the
    table says: refused (400) for AI Pipe tokens; their standard values pass."""
    r = client.post(MESSAGES, json=ask(**{field: value}), headers=api_key(token()))
    assert r.status_code == 400 and r.json()["error"]["code"] == "unpriced_option"
    assert upstream.state.received == []
    standard = {"speed": "standard", "inference_geo": "global"}[field]
    assert client.post(MESSAGES, json=ask(**{field: standard}),
                       headers=api_key(token())).status_code == 200


def test_an_unpriced_claude_model_is_refused(client, token, upstream) -> None:
    r = client.post(MESSAGES, json=ask(model="claude-nonesuch-9"), headers=api_key(token()))
    assert r.status_code == 400 and r.json()["error"]["code"] == "model_not_priced"
    assert upstream.state.received == []


def test_a_native_anthropic_key_passes_through_without_budget(client, upstream) -> None:
    """A caller's own `sk-ant-…` key (as the anthropic SDK sends it) goes to Anthropic as
    `x-api-key`, with no budget and no ledger row."""
    r = client.post(MESSAGES, json=ask(model="claude-unpriced-anything"),
                    headers={"x-api-key": OPERATOR, **VERSION})
    assert r.status_code == 200, r.text
    sent = upstream.state.received[-1]["header_list"]
    assert [v for k, v in sent if k in ("x-api-key", "authorization")] == [OPERATOR]
    assert ledger(client) == []


def test_without_the_operators_key_anthropic_answers_503(make_client, settings, token,
                                                         upstream) -> None:
    keys = {k: v for k, v in settings.provider_keys.items() if k != "anthropic"}
    from tests.conftest import with_settings

    client = make_client(with_settings(settings, provider_keys=keys))
    r = client.post(MESSAGES, json=ask(), headers=api_key(token()))
    assert r.status_code == 503 and "ANTHROPIC_API_KEY" in r.json()["message"]
    assert upstream.state.received == []


def test_an_error_event_mid_stream_passes_unchanged_and_the_call_is_charged(client, token) -> None:
    """Anthropic reports overload mid-stream as an `event: error`: it reaches the client as sent
    (its SDKs raise it), the call is recorded as broken, and charged its input and the text that
    did arrive."""
    r = client.post(MESSAGES, json=ask(stream=True),
                    headers={**api_key(token()), "x-fake": "streamerror"})
    assert r.status_code == 200
    events = provider_part(r.text)
    assert events.rsplit("\n\n", 1)[-1].startswith("event: error\ndata: ")
    assert '"overloaded_error"' in events
    [row] = ledger(client)
    assert row["cost_source"] == "estimated" and row["cost"] > 0 and row["input_tokens"] == 4
    assert row["outcome"] == "broken"
