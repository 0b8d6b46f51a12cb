"""The playground's pure modules under CPython: web/py/catalog.py (models, prices, costs),
chat.py (state, request, SSE, advice) and codegen.py ("show code")."""

from __future__ import annotations

import importlib.util
import json
import shlex
import sys
from decimal import Decimal
from pathlib import Path
from types import ModuleType

WEB_PY = Path(__file__).resolve().parents[1] / "web" / "py"


def _load(name: str) -> ModuleType:
    # Sibling imports (charts -> catalog) resolve from web/py, as in the browser.
    if str(WEB_PY) not in sys.path:
        sys.path.insert(0, str(WEB_PY))
    spec = importlib.util.spec_from_file_location(f"webpy_{name}", WEB_PY / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


catalog, chat, codegen, money = _load("catalog"), _load("chat"), _load("codegen"), _load("money")

PRICES = {"openai": {
    "gpt-4o-mini": {"input": 0.15, "output": 0.6, "cached_input": 0.075, "source": "s",
                    "date": "2025-01-01"},
    "text-embedding-3-small": {"input": 0.02, "source": "s", "date": "2025-01-01"},
    "whisper-1": {"per_minute": 0.006, "source": "s", "date": "2025-01-01"},
    "gpt-image-1": {"input": 5.0, "output": 40.0, "source": "s", "date": "2025-01-01"},
}}


# -- catalog ---------------------------------------------------------------------------------
def test_openai_models_keep_only_priced_chat_models() -> None:
    """OpenAI's list is cut to models the relay can price and that answer chat: embeddings,
    whisper, images and unpriced models are left out."""
    listing = {"data": [{"id": m} for m in
                        ("gpt-4o-mini", "text-embedding-3-small", "whisper-1", "gpt-image-1",
                         "gpt-unpriced")]}
    models = catalog.openai_models(listing, PRICES)
    assert [m["key"] for m in models] == ["openai:gpt-4o-mini"]
    assert models[0]["input"] == 150_000 and models[0]["cached"] == 75_000
    assert catalog.price_text(models[0]) == "$0.15 in · $0.60 out per 1M tokens"
    assert catalog.option_label(models[0]) == "gpt-4o-mini · $0.15 / $0.60"


def test_price_listing_offers_the_price_table_when_the_list_is_refused() -> None:
    """With no model list (budget spent), the priced chat models still fill the picker."""
    listing = catalog.price_listing(PRICES, "openai")
    assert [m["id"] for m in catalog.openai_models(listing, PRICES)] == ["gpt-4o-mini"]


def test_openrouter_models_priced_per_token_and_searchable() -> None:
    """OpenRouter entries carry its per-token prices; free and "varies" models say so; search
    matches every word anywhere in the id, name or provider."""
    listing = {"data": [
        {"id": "openai/gpt-4o-mini", "name": "OpenAI: GPT-4o-mini",
         "pricing": {"prompt": "0.00000015", "completion": "0.0000006"}},
        {"id": "meta/llama:free", "pricing": {"prompt": "0", "completion": "0"}},
        {"id": "openrouter/auto", "pricing": {"prompt": "-1", "completion": "-1"}},
        {"name": "no id"},
    ]}
    models = catalog.openrouter_models(listing)
    assert [m["id"] for m in models] == ["meta/llama:free", "openai/gpt-4o-mini",
                                         "openrouter/auto"]
    by_id = {m["id"]: m for m in models}
    assert catalog.price_text(by_id["openai/gpt-4o-mini"]) == "$0.15 in · $0.60 out per 1M tokens"
    assert catalog.price_text(by_id["meta/llama:free"]) == "free"
    assert catalog.option_label(by_id["openrouter/auto"]) == "openrouter/auto · price varies"
    assert [m["id"] for m in catalog.search(models, "GPT mini")] == ["openai/gpt-4o-mini"]
    assert [m["id"] for m in catalog.search(models, "openrouter free")] == ["meta/llama:free"]
    assert len(catalog.search(models, "")) == 3


def test_reply_cost_computed_with_cache_and_reported_when_given() -> None:
    """Cost is tokens x price (cached input at its own price, reasoning inside output), exact
    in pico-dollars; a provider-reported `usage.cost` wins."""
    model = catalog.openai_models({"data": [{"id": "gpt-4o-mini"}]}, PRICES)[0]
    usage = {"prompt_tokens": 1000, "completion_tokens": 200,
             "prompt_tokens_details": {"cached_tokens": 400},
             "completion_tokens_details": {"reasoning_tokens": 50}}
    pico, source = catalog.reply_cost(model, usage)
    expected = (600 * Decimal("0.15") + 400 * Decimal("0.075") + 200 * Decimal("0.6")) / 10**6
    assert source == "computed" and Decimal(pico) / 10**12 == expected
    assert money.usd(pico) == "$0.00024"
    assert catalog.reply_cost(model, {**usage, "cost": 0.0123}) == (12_300_000_000, "reported")
    assert catalog.reply_cost(None, usage) == (None, "unknown")
    assert catalog.usage_tokens(usage) == {"input": 1000, "output": 200, "cached": 400,
                                           "reasoning": 50}


# -- chat ------------------------------------------------------------------------------------
def test_state_round_trips_and_survives_corruption() -> None:
    """The conversation survives a reload; a corrupt or foreign value gives a fresh state,
    and malformed messages are dropped rather than crashing the page."""
    state = chat.new_state()
    state.update(model="openai:gpt-4o-mini", system="Be terse.", temperature="0.2")
    state["messages"] = [{"role": "user", "content": "hi", "meta": {}},
                         {"role": "assistant", "content": "hello", "meta": {"cost": "$0.01"}}]
    assert chat.load_state(chat.dump_state(state)) == state
    assert chat.load_state("{not json") == chat.new_state()
    assert chat.load_state(None) == chat.new_state()
    odd = json.dumps({"messages": [{"role": "tool", "content": "x"}, {"role": "user"},
                                   {"role": "user", "content": "ok", "meta": 5}]})
    assert chat.load_state(odd)["messages"] == [{"role": "user", "content": "ok", "meta": {}}]


def test_settings_are_validated_and_blank_means_default() -> None:
    """Temperature 0-2 and max tokens ≥ 1 are sent; blank is not sent; bad values explain."""
    assert chat.parse_settings("0.7", "100") == (0.7, 100, None)
    assert chat.parse_settings("", " ") == (None, None, None)
    assert chat.parse_settings("3", "")[2] == "Temperature must be a number from 0 to 2."
    assert chat.parse_settings("", "1.5")[2] == "Max tokens must be a whole number of at least 1."


def test_request_carries_system_history_and_provider_specific_limit() -> None:
    """The body has the system prompt, earlier turns (not empty stopped replies), the new
    prompt, and the max-tokens field each provider understands."""
    state = chat.new_state()
    state["system"] = "Sys"
    state["messages"] = [{"role": "user", "content": "a", "meta": {}},
                         {"role": "assistant", "content": "", "meta": {"stopped": True}},
                         {"role": "user", "content": "b", "meta": {}},
                         {"role": "assistant", "content": "B", "meta": {}}]
    messages = chat.request_messages(state, "c")
    assert [(m["role"], m["content"]) for m in messages] == [
        ("system", "Sys"), ("user", "a"), ("user", "b"), ("assistant", "B"), ("user", "c")]
    openai = dict(chat.request_body("openai", "gpt-4o-mini", messages, 0.5, 10))
    assert openai["max_completion_tokens"] == 10 and openai["stream"] is True
    openrouter = dict(chat.request_body("openrouter", "x/y", messages, None, 10))
    assert openrouter["max_tokens"] == 10 and "temperature" not in openrouter
    assert json.loads(chat.body_json(chat.request_body("openai", "m", messages))) == {
        "model": "m", "messages": messages, "stream": True,
        "stream_options": {"include_usage": True}}  # the page shows the tokens


def test_code_messages_show_the_typed_or_the_last_request() -> None:
    """"Show code" uses the prompt being typed; with none, the request the last reply
    answered (not the reply itself); with no conversation, a sample prompt."""
    state = chat.new_state()
    assert chat.code_messages(state) == [{"role": "user", "content": "Hello!"}]
    state["messages"] = [{"role": "user", "content": "q", "meta": {}},
                         {"role": "assistant", "content": "a", "meta": {}}]
    assert chat.code_messages(state) == [{"role": "user", "content": "q"}]
    assert [m["content"] for m in chat.code_messages(state, "next")] == ["q", "a", "next"]
    assert len(state["messages"]) == 2  # the conversation itself is untouched


def test_sse_parser_handles_split_chunks_comments_and_crlf() -> None:
    """Events split anywhere across network chunks, CRLF line ends and comment lines all
    parse to the same events."""
    stream = (": OPENROUTER PROCESSING\r\n\r\ndata: {\"a\": 1}\r\n\r\nevent: x\ndata: {\"b\"\n"
              "data: : 2}\n\ndata: [DONE]\n\n")
    for size in (1, 3, 7, len(stream)):
        parser = chat.SSEParser()
        events = []
        for i in range(0, len(stream), size):
            events += parser.feed(stream[i:i + size])
        assert events == ['{"a": 1}', '{"b"\n: 2}', "[DONE]"]


def test_reply_accumulates_text_usage_and_errors() -> None:
    """Deltas add up to the reply; the usage chunk (OpenAI's empty choices or OpenRouter's
    last chunk) is kept; [DONE] ends; a mid-stream error is reported."""
    reply = chat.Reply()
    reply.add(json.dumps({"choices": [{"delta": {"role": "assistant", "content": ""}}]}))
    assert reply.add(json.dumps({"choices": [{"delta": {"content": "Hel"}}]})) == "Hel"
    reply.add(json.dumps({"choices": [{"delta": {"content": "lo"}, "finish_reason": "stop"}]}))
    reply.add(json.dumps({"choices": [], "usage": {"prompt_tokens": 1, "completion_tokens": 2}}))
    reply.add("not json")
    reply.add("[DONE]")
    assert (reply.text, reply.finish, reply.done) == ("Hello", "stop", True)
    assert reply.usage == {"prompt_tokens": 1, "completion_tokens": 2}
    reply.add(json.dumps({"error": {"message": "overloaded"}}))
    assert reply.error == "overloaded"


def test_advice_names_the_problem_and_the_next_step() -> None:
    """Exhausted budget -> the dashboard; bad token -> sign in again and come back; others
    say what failed."""
    budget = chat.advice(429, {"error": {"code": "insufficient_quota"}}, "Usage $1 / $1 in 7 days")
    assert budget["kind"] == "budget" and budget["href"] == "/dashboard"
    assert "Usage $1 / $1 in 7 days" in budget["text"]
    auth = chat.advice(401, {}, "Invalid token")
    assert auth["href"] == "/login?redirect=/playground" and "expired" in auth["text"]
    assert chat.advice(429, {"error": {"code": "rate_limit_exceeded"}}, "slow")["kind"] == "rate"
    assert chat.advice(0, None, "offline")["kind"] == "network"
    assert chat.advice(400, None, "bad model")["text"] == "The request failed (HTTP 400): bad model"


def test_recorded_row_finds_the_stopped_call() -> None:
    """After Stop, the page finds the relay's ledger row for that call: same model, not older
    than the moment it was sent."""
    listing = {"data": [{"model": "m", "ts": "2026-01-31T12:34:57.1Z", "cost": 1},
                        {"model": "m", "ts": "2026-01-31T12:34:55.9Z", "cost": 2}]}
    assert chat.recorded_row(listing, "m", "2026-01-31T12:34:56")["cost"] == 1
    assert chat.recorded_row(listing, "other", "2026-01-31T12:34:56") is None
    assert chat.recorded_row(listing, "m", "2026-01-31T12:34:58") is None
    assert chat.recorded_row(None, "m", "") is None


def test_meta_text_shows_tokens_cost_and_source() -> None:
    """The line under a reply: model, tokens (reasoning and cached when any), cost, source."""
    usage = {"prompt_tokens": 4, "completion_tokens": 9, "prompt_tokens_details": {"cached_tokens": 2},
             "completion_tokens_details": {"reasoning_tokens": 3}}
    meta = chat.reply_meta("o4-mini", usage, "$0.0001", "computed")
    assert chat.meta_text(meta, catalog.usage_tokens(usage)) == (
        "o4-mini · 4 in / 9 out tokens (3 reasoning), 2 cached · $0.0001 (tokens × price)")
    stopped = chat.reply_meta("m", None, "estimating…", "pending", stopped=True)
    assert chat.meta_text(stopped, catalog.usage_tokens(None)) == (
        "m · estimating… (the relay records an estimate) · stopped")


def test_meta_parts_give_the_cost_its_own_piece() -> None:
    """The page shows the pieces separately, the cost alone in its element (the `cost` hook:
    nothing but the amount), so the latest reply's cost is not repeated elsewhere."""
    meta = chat.reply_meta("gpt-4o-mini", {"prompt_tokens": 8, "completion_tokens": 10},
                           "$0.000007", "computed")
    parts = chat.meta_parts(meta, catalog.usage_tokens(meta["usage"]))
    assert parts == [("model", "gpt-4o-mini"), ("tokens", "8 in / 10 out tokens"),
                     ("cost", "$0.000007"), ("source", "tokens × price")]
    assert chat.meta_parts(chat.reply_meta("m", None, "", "unknown"), catalog.usage_tokens(None)) == [
        ("model", "m"), ("cost", "—")]


# -- codegen ---------------------------------------------------------------------------------
BODY = chat.request_body("openai", "gpt-4o-mini",
                         [{"role": "system", "content": "It's terse"},
                          {"role": "user", "content": 'Say "hi" \\ ü'}], 0.5, 20)


def test_curl_is_valid_shell_with_the_exact_body() -> None:
    """The curl command, split the way a POSIX shell would, posts exactly the page's body."""
    code = codegen.curl("http://127.0.0.1:8787", "/openai/v1/chat/completions", BODY)
    command = [line for line in code.split("\n") if not line.startswith("#")]
    words = shlex.split(" ".join(line.rstrip("\\") for line in command))
    assert words[:3] == ["curl", "-N", "http://127.0.0.1:8787/openai/v1/chat/completions"]
    assert words[words.index("-H") + 1] == "Authorization: Bearer $AIPIPE_TOKEN"
    assert json.loads(words[words.index("-d") + 1]) == dict(BODY)


def test_python_snippet_compiles_and_sends_the_same_arguments() -> None:
    """The Python snippet is valid Python calling the openai SDK with this relay's base URL and
    the page's model, messages, temperature, limit and streaming."""
    code = codegen.python("http://h", "openrouter", BODY)
    compile(code, "snippet.py", "exec")
    assert 'base_url="http://h/openrouter/v1"' in code
    start = code.index("create(") + len("create(")
    call = code[start:code.index("\n)\n", start)]
    namespace: dict = {}
    exec(f"def f(**kw): return kw\nresult = f({call})", namespace)  # our own snippet
    assert namespace["result"] == dict(BODY)


def test_javascript_snippet_uses_aipipe_js_and_the_body() -> None:
    """The JS snippet imports this relay's aipipe.js and posts the same JSON body."""
    code = codegen.javascript("http://h", "/openai/v1/chat/completions", BODY)
    assert 'import { getProfile, login } from "http://h/aipipe.js";' in code
    start = code.index("JSON.stringify(") + len("JSON.stringify(")
    body = code[start:code.index("),\n});", start)]
    assert json.loads(body) == dict(BODY)
    assert [item[0] for item in codegen.all_code("http://h/", "openai", "/p", BODY)] == [
        "code-curl", "code-python", "code-js"]
