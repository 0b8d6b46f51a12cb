"""Reading usage from streams on the side: every provider's format, split at every byte."""

from __future__ import annotations

import json
import time
from decimal import Decimal
from typing import Any

import pytest

from relay.costing.usage import Usage
from relay.providers import sse
from relay.providers.sse import StreamUsageReader


def _read(provider: str, chunks: list[bytes], *, close: bool = True) -> StreamUsageReader:
    reader = StreamUsageReader(provider)
    for chunk in chunks:
        reader.feed(chunk)
    if close:
        reader.close()
    return reader


def _result(reader: StreamUsageReader) -> tuple[Any, ...]:
    return reader.usage, reader.output_chars, reader.model, reader.done, reader.error


def _every_split(provider: str, data: bytes) -> tuple[Any, ...]:
    """Feed the stream cut at every byte boundary (and byte by byte): all must agree."""
    whole = _result(_read(provider, [data]))
    for cut in range(1, len(data)):
        assert _result(_read(provider, [data[:cut], data[cut:]])) == whole, cut
    assert _result(_read(provider, [data[i : i + 1] for i in range(len(data))])) == whole
    return whole


def _sse(*events: dict[str, Any] | str, event_names: list[str] | None = None,
         crlf: bool = False) -> bytes:
    out = []
    for i, e in enumerate(events):
        data = e if isinstance(e, str) else json.dumps(e, separators=(",", ":"),
                                                       ensure_ascii=False)
        name = f"event: {event_names[i]}\n" if event_names else ""
        out.append(f"{name}data: {data}\n\n")
    text = "".join(out)
    return (text.replace("\n", "\r\n") if crlf else text).encode()


# OpenAI chat completions stream with `stream_options.include_usage`: `"usage": null` on every
# chunk, the usage on a last chunk with no choices, then [DONE].
# https://platform.openai.com/docs/api-reference/chat-streaming/streaming
def _chat_chunk(delta: dict[str, Any], usage: Any = None, finish: Any = None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-123", "object": "chat.completion.chunk", "created": 1694268190,
        "model": "gpt-4o-mini-2024-07-18", "system_fingerprint": "fp_44709d6fcb",
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]
        if delta is not None else [],
        "usage": usage,
    }


OPENAI_CHAT = _sse(
    _chat_chunk({"role": "assistant", "content": "", "refusal": None}),
    _chat_chunk({"content": "Héllo"}),
    _chat_chunk({"content": " 日本 \"q\"\n"}),
    _chat_chunk({}, finish="stop"),
    _chat_chunk(None, usage={
        "prompt_tokens": 9, "completion_tokens": 12, "total_tokens": 21,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0,
                                      "accepted_prediction_tokens": 0,
                                      "rejected_prediction_tokens": 0}}),
    "[DONE]",
)


def test_openai_chat_stream_at_every_split() -> None:
    """Usage comes from the last chunk; text deltas count as characters, escapes decoded."""
    usage, chars, model, done, error = _every_split("openai", OPENAI_CHAT)
    assert usage == Usage(input_tokens=9, output_tokens=12)
    assert chars == len("Héllo") + len(' 日本 "q"\n')
    assert model == "gpt-4o-mini-2024-07-18"
    assert done and error is None


# Responses API stream: named events; text in *.delta events, usage in response.completed.
# https://platform.openai.com/docs/api-reference/responses-streaming
_RESP = {"id": "resp_67c9fdcecf488190bdd9a0409de3a1ec07b8b0ad4e5eb654", "object": "response",
         "created_at": 1741290958, "status": "in_progress", "error": None,
         "model": "gpt-4.1-2025-04-14", "output": [], "usage": None}
_DONE_OUTPUT = [{"type": "message", "id": "msg_1", "status": "completed", "role": "assistant",
                 "content": [{"type": "output_text", "text": "Hi there!", "annotations": []}]}]
RESPONSES_EVENTS: list[dict[str, Any]] = [
    {"type": "response.created", "sequence_number": 0, "response": _RESP},
    {"type": "response.in_progress", "sequence_number": 1, "response": _RESP},
    {"type": "response.output_text.delta", "item_id": "msg_1", "output_index": 0,
     "content_index": 0, "delta": "Hi", "sequence_number": 4},
    {"type": "response.output_text.delta", "item_id": "msg_1", "output_index": 0,
     "content_index": 0, "delta": " there!", "sequence_number": 5},
    {"type": "response.output_text.done", "item_id": "msg_1", "output_index": 0,
     "content_index": 0, "text": "Hi there!", "sequence_number": 6},
    {"type": "response.completed", "sequence_number": 9, "response": {
        **_RESP, "status": "completed", "output": _DONE_OUTPUT,
        "usage": {"input_tokens": 37, "input_tokens_details": {"cached_tokens": 0},
                  "output_tokens": 11, "output_tokens_details": {"reasoning_tokens": 0},
                  "total_tokens": 48}}},
]


@pytest.mark.parametrize("named", [True, False], ids=["event-lines", "type-only"])
def test_responses_stream_counts_deltas_once(named: bool) -> None:
    """Responses: usage from response.completed; the `done` summaries do not recount text."""
    names = [e["type"] for e in RESPONSES_EVENTS] if named else None
    usage, chars, model, done, error = _every_split(
        "openai", _sse(*RESPONSES_EVENTS, event_names=names)
    )
    assert usage == Usage(input_tokens=37, output_tokens=11)
    assert chars == len("Hi there!")
    assert model == "gpt-4.1-2025-04-14" and done and error is None


# OpenRouter: keep-alive comments, usage (with cost) in the last chunk; some providers behind
# it repeat cumulative usage — the last report counts, once.
# https://openrouter.ai/docs/use-cases/usage-accounting
def _or_chunk(content: str, usage: Any = None, finish: Any = None) -> dict[str, Any]:
    chunk: dict[str, Any] = {
        "id": "gen-1750000000-abc", "provider": "OpenAI", "model": "openai/gpt-4o-mini",
        "object": "chat.completion.chunk", "created": 1750000000,
        "choices": [{"index": 0, "delta": {"role": "assistant", "content": content},
                     "finish_reason": finish, "native_finish_reason": finish}],
    }
    if usage is not None:
        chunk["usage"] = usage
    return chunk


OPENROUTER = b": OPENROUTER PROCESSING\n\n" + _sse(
    _or_chunk("Hel"),
    _or_chunk("lo", usage={"prompt_tokens": 10, "completion_tokens": 1, "total_tokens": 11,
                           "cost": 0.0000015}),
    _or_chunk("", finish="stop", usage={
        "prompt_tokens": 10, "completion_tokens": 2, "total_tokens": 12,
        "cost": 0.0000027, "is_byok": False,
        "prompt_tokens_details": {"cached_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0}}),
    "[DONE]",
)


def test_openrouter_cumulative_usage_and_cost_count_once() -> None:
    """OpenRouter's cost is read exactly, from the last report only (never summed)."""
    usage, chars, model, done, error = _every_split("openrouter", OPENROUTER)
    assert usage == Usage(input_tokens=10, output_tokens=2, reported_cost=Decimal("0.0000027"))
    assert chars == 5 and model == "openai/gpt-4o-mini" and done and error is None


# Gemini streamGenerateContent: every chunk carries the cumulative usageMetadata so far.
# https://ai.google.dev/api/generate-content#method:-models.streamgeneratecontent
GEMINI_CHUNKS: list[dict[str, Any]] = [
    {"candidates": [{"content": {"parts": [{"text": "The"}], "role": "model"}, "index": 0}],
     "usageMetadata": {"promptTokenCount": 8, "totalTokenCount": 33,
                       "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 8}],
                       "thoughtsTokenCount": 25},
     "modelVersion": "gemini-2.5-flash", "responseId": "mmBjaO2aGs-m1dkPpaTxmQ4"},
    {"candidates": [{"content": {"parts": [{"text": " quick brown fox"}], "role": "model"},
                     "index": 0}],
     "usageMetadata": {"promptTokenCount": 8, "candidatesTokenCount": 4, "totalTokenCount": 37,
                       "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 8}],
                       "thoughtsTokenCount": 25},
     "modelVersion": "gemini-2.5-flash", "responseId": "mmBjaO2aGs-m1dkPpaTxmQ4"},
    {"candidates": [{"content": {"parts": [{"text": " jumps — ünïcode."}], "role": "model"},
                     "finishReason": "STOP", "index": 0}],
     "usageMetadata": {"promptTokenCount": 8, "candidatesTokenCount": 12, "totalTokenCount": 45,
                       "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 8}],
                       "thoughtsTokenCount": 25},
     "modelVersion": "gemini-2.5-flash", "responseId": "mmBjaO2aGs-m1dkPpaTxmQ4"},
]
GEMINI_TEXT = "The quick brown fox jumps — ünïcode."
GEMINI_USAGE = Usage(input_tokens=8, output_tokens=37, reasoning_tokens=25)


def _gemini_sse() -> bytes:
    # Gemini separates SSE events with CRLF and pretty-prints with ": " after keys.
    return b"".join(
        b"data: " + json.dumps(c, ensure_ascii=False).encode() + b"\r\n\r\n"
        for c in GEMINI_CHUNKS
    )


def _gemini_array() -> bytes:
    # Without alt=sse Gemini streams one JSON array, elements pretty-printed, ",\r\n" between.
    parts = [json.dumps(c, indent=2, ensure_ascii=False) for c in GEMINI_CHUNKS]
    return ("[" + "\n,\r\n".join(parts) + "\n]").encode()


def test_gemini_sse_cumulative_usage_is_counted_once() -> None:
    """Gemini alt=sse: the last usageMetadata is the usage (8 in, 12 + 25 thinking out)."""
    usage, chars, model, _done, error = _every_split("geminiv1beta", _gemini_sse())
    assert usage == GEMINI_USAGE
    assert chars == len(GEMINI_TEXT) and model == "gemini-2.5-flash" and error is None


def test_gemini_json_array_stream_at_every_split() -> None:
    """Gemini without alt=sse (a JSON array arriving piecemeal) reads the same as its SSE."""
    usage, chars, model, done, error = _every_split("geminiv1beta", _gemini_array())
    assert usage == GEMINI_USAGE
    assert chars == len(GEMINI_TEXT) and model == "gemini-2.5-flash" and done
    assert error is None


def test_gemini_array_usage_is_readable_before_close() -> None:
    """Usage read mid-stream (an abort) reflects every complete element received so far."""
    data = _gemini_array()
    cut = data.index(b"\n,\r\n", data.index(b"quick")) + 1
    reader = _read("gemini", [data[:cut]], close=False)
    assert reader.usage == Usage(input_tokens=8, output_tokens=29, reasoning_tokens=25)
    assert reader.output_chars == len("The quick brown fox") and not reader.done


@pytest.mark.parametrize(
    ("provider", "data", "expected"),
    [
        (  # OpenAI chat: an error chunk mid-stream
            "openai",
            _sse(_chat_chunk({"content": "Hi"}),
                 {"error": {"message": "The server had an error while processing your request.",
                            "type": "server_error", "param": None, "code": None}}),
            {"message": "The server had an error while processing your request.",
             "type": "server_error", "param": None, "code": None},
        ),
        (  # Responses API: `event: error`
            "openai",
            _sse({"type": "error", "code": "ERR_SOMETHING", "message": "Something went wrong",
                  "param": None, "sequence_number": 1}, event_names=["error"]),
            {"type": "error", "code": "ERR_SOMETHING", "message": "Something went wrong",
             "param": None, "sequence_number": 1},
        ),
        (  # Responses API: `response.failed`
            "openai",
            _sse({"type": "response.failed", "response": {**_RESP, "status": "failed",
                  "error": {"code": "server_error", "message": "The model failed"}}},
                 event_names=["response.failed"]),
            {"code": "server_error", "message": "The model failed"},
        ),
        (  # OpenRouter: an error on a chunk with finish_reason "error"
            "openrouter",
            _sse({**_or_chunk("", finish="error"),
                  "error": {"code": "server_error", "message": "Provider disconnected"}}),
            {"code": "server_error", "message": "Provider disconnected"},
        ),
        (  # Gemini SSE error event
            "gemini",
            _sse({"error": {"code": 503, "message": "The model is overloaded.",
                            "status": "UNAVAILABLE"}}, crlf=True),
            {"code": 503, "message": "The model is overloaded.", "status": "UNAVAILABLE"},
        ),
        (  # Gemini array stream ending in an error element
            "gemini",
            ("[" + json.dumps(GEMINI_CHUNKS[0], indent=2) + "\n,\r\n"
             + json.dumps({"error": {"code": 500, "message": "Internal error",
                                     "status": "INTERNAL"}}, indent=2) + "\n]").encode(),
            {"code": 500, "message": "Internal error", "status": "INTERNAL"},
        ),
    ],
    ids=["openai-chat", "responses-error", "responses-failed", "openrouter", "gemini-sse",
         "gemini-array"],
)
def test_errors_mid_stream_are_reported(provider: str, data: bytes, expected: Any) -> None:
    """An error event in the stream surfaces as `error`, at any split of the bytes."""
    assert _every_split(provider, data)[4] == expected


def test_aborted_stream_has_no_usage_but_counts_text() -> None:
    """A stream cut before its usage chunk leaves usage None and the text seen so far."""
    cut = OPENAI_CHAT.index(b'"finish_reason":"stop"')
    reader = _read("openai", [OPENAI_CHAT[:cut]])
    assert reader.usage is None and not reader.done
    assert reader.output_chars == len("Héllo") + len(' 日本 "q"\n')


def test_last_line_without_newline_is_read_on_close() -> None:
    """A final `data:` line the server did not terminate is read when the stream closes."""
    data = OPENAI_CHAT.replace(b"data: [DONE]\n\n", b"").rstrip(b"\n")
    reader = _read("openai", [data], close=False)
    assert reader.usage is None
    reader.close()
    assert reader.usage == Usage(input_tokens=9, output_tokens=12)


def test_plain_json_body_is_understood() -> None:
    """A non-streamed JSON answer (or error body) fed through the reader still yields usage."""
    body = json.dumps({"object": "chat.completion", "model": "gpt-4o",
                       "choices": [{"message": {"role": "assistant", "content": "Hi!"}}],
                       "usage": {"prompt_tokens": 5, "completion_tokens": 2}}).encode()
    usage, chars, model, done, error = _every_split("openai", b"  " + body)
    assert usage == Usage(input_tokens=5, output_tokens=2)
    assert (chars, model, done, error) == (3, "gpt-4o", True, None)
    err = json.dumps({"error": {"message": "Invalid model", "code": "model_not_found"}})
    assert _read("openai", [err.encode()]).error == {
        "message": "Invalid model", "code": "model_not_found"}


def test_reasoning_and_tool_arguments_count_as_output() -> None:
    """Reasoning deltas (OpenRouter/DeepSeek) and tool-call arguments are billed output text."""
    data = _sse(
        _chat_chunk({"reasoning": "Let me think."}),
        _chat_chunk({"reasoning_content": "Hmm"}),
        _chat_chunk({"tool_calls": [{"index": 0, "function": {"arguments": "{\"city\":"}}]}),
        _chat_chunk({"content": "ok", "refusal": None}),
    )
    assert _every_split("openrouter", data)[1] == len("Let me think.") + 3 + 8 + 2


def test_only_the_usage_event_is_json_parsed(monkeypatch: pytest.MonkeyPatch) -> None:
    """The hot path parses no JSON per chunk: only the one usage event, once, when read."""
    calls: list[int] = []
    real = json.loads

    def counting(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(sse.json, "loads", counting)
    plain = OPENAI_CHAT.replace(' 日本 \\"q\\"\\n'.encode(), "日本".encode())
    many = _sse(*[_chat_chunk({"content": "x"}) for _ in range(200)]) + plain
    reader = _read("openai", [many])
    assert calls == []
    assert reader.usage is not None and reader.usage.input_tokens == 9
    assert reader.usage is not None and len(calls) == 1
    assert reader.output_chars == 200 + len("Héllo日本")


def test_huge_line_in_one_byte_chunks_is_linear() -> None:
    """A 300 KB event fed a byte at a time is not re-joined per chunk (no quadratic cost)."""
    text = "y" * 300_000
    data = _sse(_chat_chunk({"content": text}))
    start = time.perf_counter()
    reader = _read("openai", [data[i : i + 1] for i in range(len(data))])
    elapsed = time.perf_counter() - start
    assert reader.output_chars == len(text)
    assert elapsed < 10, elapsed  # linear: ~0.3 s; quadratic would take minutes


def test_huge_gemini_array_element_in_small_chunks_is_linear() -> None:
    """A 200 KB Gemini array element in 1-byte chunks is parsed a few times, not per chunk."""
    element = {**GEMINI_CHUNKS[2], "candidates": [
        {"content": {"parts": [{"text": "z" * 200_000}], "role": "model"}, "index": 0}]}
    data = ("[" + json.dumps(element, indent=2) + "\n]").encode()
    start = time.perf_counter()
    reader = _read("gemini", [data[i : i + 1] for i in range(len(data))])
    elapsed = time.perf_counter() - start
    assert reader.output_chars == 200_000 and reader.usage == GEMINI_USAGE
    assert elapsed < 10, elapsed  # doubling retries: ~0.5 s; a parse per chunk: hours


def test_unknown_and_empty_input_is_harmless() -> None:
    """Comments, ids, retries, blank chunks and a non-JSON body leave no usage and no error."""
    data = b"\n\n: ping\n\nid: 7\nretry: 1000\n\n" + b"data: not json\n\n"
    reader = _read("openai", [b"", data, b""])
    assert _result(reader) == (None, 0, None, False, None)


def test_usage_read_mid_stream_follows_later_reports() -> None:
    """Reading usage early does not freeze it: a later cumulative report replaces it."""
    data = _gemini_sse()
    cut = data.index(b"data: ", data.index(b"quick"))
    reader = StreamUsageReader("gemini")
    reader.feed(data[:cut])
    assert reader.usage == Usage(input_tokens=8, output_tokens=29, reasoning_tokens=25)
    reader.feed(data[cut:])
    assert reader.usage == GEMINI_USAGE
    assert reader.output_chars == len(GEMINI_TEXT)


def test_long_streams_are_inspected_in_batches_without_losing_usage() -> None:
    """Past the held-events bound, events are inspected early; earlier usage still counts."""
    usage_event = _chat_chunk(None, usage={"prompt_tokens": 3, "completion_tokens": 4000})
    filler = [_chat_chunk({"content": "abcd" * 25}) for _ in range(4000)]  # > 256 KB
    reader = _read("openai", [_sse(usage_event, *filler)])
    assert reader.usage == Usage(input_tokens=3, output_tokens=4000)
    assert reader.output_chars == 4000 * 100
