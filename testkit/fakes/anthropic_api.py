"""The fake Anthropic Messages API (https://docs.claude.com/en/api/messages), under `/anthropic`.

`POST /v1/messages` answers JSON or, with `"stream": true`, the real event sequence:
`message_start` (input usage, output 1), `content_block_start`, `ping`, `content_block_delta`s,
`content_block_stop`, `message_delta` (the final output count), `message_stop`. With extended
thinking (`"thinking": {"type": "enabled", ...}`) a thinking block comes first and its tokens
count as output. `break` cuts the stream mid-way; `streamerror` sends an `error` event
(overloaded) mid-stream, as Anthropic does. `max_tokens` is required and bounds the reply,
which then stops with `stop_reason: "max_tokens"`; `thinking.budget_tokens` must be at least
1024 and under max_tokens, unless the `interleaved-thinking-2025-05-14` beta is on. Under `fill`
the reply runs to the larger of max_tokens and the thinking budget (the rest of the visible text
is thinking). `POST /v1/messages/count_tokens` and
`GET /v1/models` are free. The `anthropic-version` header is required, as on the real API.
"""

from __future__ import annotations

import uuid
from typing import Any

from starlette.responses import JSONResponse, Response

from .protocol import ANTHROPIC_MODELS, Call, reply_chunks, sse, words

THINKING_TOKENS = 3  # tokens of the fake's thinking block, when thinking is enabled
# With this beta a thinking budget may exceed max_tokens (thinking across a turn's tool calls).
INTERLEAVED = "interleaved-thinking-2025-05-14"


def anthropic_error(status: int, kind: str, message: str) -> Response:
    """An error in Anthropic's shape: `{"type": "error", "error": {"type", "message"}}`."""
    return JSONResponse({"type": "error", "error": {"type": kind, "message": message},
                         "request_id": f"req_{uuid.uuid4().hex[:24]}"}, status_code=status)


def _prompt(data: dict[str, Any]) -> int:
    system = data.get("system")
    system_words = words(system) if isinstance(system, str) else words(system or [])
    return max(1, words(data.get("messages")) + system_words)


def _usage(call: Call, prompt: int, output: int) -> dict[str, Any]:
    cached = prompt // 2 if "cached" in call.behaviours else 0
    usage: dict[str, Any] = {
        "input_tokens": prompt - cached, "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": cached, "output_tokens": output,
        "service_tier": "standard"}
    return usage


def messages(call: Call) -> Response:
    data = call.data
    max_tokens = data.get("max_tokens")
    if not isinstance(max_tokens, int) or max_tokens < 1:
        return anthropic_error(400, "invalid_request_error", "max_tokens: Field required")
    thinking = data.get("thinking") or {}
    thinks = isinstance(thinking, dict) and thinking.get("type") == "enabled"
    budget = thinking.get("budget_tokens", 0) if thinks else 0
    interleaved = INTERLEAVED in call.request.headers.get("anthropic-beta", "")
    if thinks and not (isinstance(budget, int) and not isinstance(budget, bool) and budget >= 1024
                       and (budget < max_tokens or interleaved)):
        return anthropic_error(400, "invalid_request_error",
                               "thinking.budget_tokens: must be at least 1024 and less than max_tokens")
    if "fill" in call.behaviours:  # the reply runs to all the request allows, mostly thinking
        total = max(max_tokens, budget)
        texts = reply_chunks(min(call.chunks, total))
        thought = total - len(texts)
    else:
        thought = min(THINKING_TOKENS, max_tokens) if thinks else 0
        texts = reply_chunks(call.chunks)[: max(0, max_tokens - thought)]
    output = thought + len(texts)
    stop = "max_tokens" if len(texts) < call.chunks or "fill" in call.behaviours else "end_turn"
    prompt = _prompt(data)
    usage = _usage(call, prompt, output)
    message: dict[str, Any] = {
        "id": f"msg_{uuid.uuid4().hex[:24]}", "type": "message", "role": "assistant",
        "model": call.model, "content": [], "stop_reason": None, "stop_sequence": None}
    blocks: list[dict[str, Any]] = []
    if thinks:
        blocks.append({"type": "thinking", "thinking": "Let me think.", "signature": "fake-sig"})
    blocks.append({"type": "text", "text": "".join(texts)})
    if data.get("stream") is not True:
        answer = {**message, "content": blocks, "stop_reason": stop, "usage": usage}
        return call.json(answer, usage)
    start_usage = {**usage, "output_tokens": 1}
    events = [sse({"type": "message_start", "message": {**message, "usage": start_usage}},
                  "message_start")]
    index = 0
    if thinks:
        events += [
            sse({"type": "content_block_start", "index": 0,
                 "content_block": {"type": "thinking", "thinking": "", "signature": ""}},
                "content_block_start"),
            sse({"type": "content_block_delta", "index": 0,
                 "delta": {"type": "thinking_delta", "thinking": "Let me think."}},
                "content_block_delta"),
            sse({"type": "content_block_delta", "index": 0,
                 "delta": {"type": "signature_delta", "signature": "fake-sig"}},
                "content_block_delta"),
            sse({"type": "content_block_stop", "index": 0}, "content_block_stop"),
        ]
        index = 1
    events += [sse({"type": "content_block_start", "index": index,
                    "content_block": {"type": "text", "text": ""}}, "content_block_start"),
               sse({"type": "ping"}, "ping")]
    events += [sse({"type": "content_block_delta", "index": index,
                    "delta": {"type": "text_delta", "text": t}}, "content_block_delta")
               for t in texts]
    if "streamerror" in call.behaviours:  # Anthropic reports overload mid-stream as an event
        events.append(sse({"type": "error", "error": {"type": "overloaded_error",
                                                      "message": "Overloaded"}}, "error"))
        return call.stream(events, None, "text/event-stream", lambda: None)
    events += [
        sse({"type": "content_block_stop", "index": index}, "content_block_stop"),
        sse({"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": None},
             "usage": {"output_tokens": output}}, "message_delta"),
        sse({"type": "message_stop"}, "message_stop"),
    ]
    cut = max(2, len(events) // 2)
    return call.stream(events, cut, "text/event-stream", lambda: call.bill(usage, True))


def count_tokens(call: Call) -> Response:
    return JSONResponse({"input_tokens": _prompt(call.data)})


def models(call: Call) -> Response:
    data = [{"type": "model", "id": m, "display_name": m, "created_at": "2025-05-14T00:00:00Z"}
            for m in ANTHROPIC_MODELS]
    return JSONResponse({"data": data, "has_more": False, "first_id": data[0]["id"],
                         "last_id": data[-1]["id"]})


def anthropic_dispatch(call: Call) -> Response | None:
    if not call.request.headers.get("anthropic-version"):
        return anthropic_error(400, "invalid_request_error",
                               "anthropic-version: header is required")
    route = (call.request.method, call.sub.rstrip("/"))
    if route == ("POST", "v1/messages"):
        return messages(call)
    if route == ("POST", "v1/messages/count_tokens"):
        return count_tokens(call)
    if route == ("GET", "v1/models"):
        return models(call)
    return None
