"""The fake OpenAI endpoints; OpenRouter serves chat, embeddings and models with `usage.cost`."""

from __future__ import annotations

import base64
import hashlib
import math
import re
import struct
import time
import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from starlette.responses import JSONResponse, Response

from .protocol import (
    OPENAI_MODELS,
    OPENROUTER_PRICES,
    Call,
    embed,
    openrouter_cost,
    output_cap,
    reply_chunks,
    sse,
    words,
)


def _is_reasoning(model: str) -> bool:
    return re.match(r"(openai/)?(o\d|gpt-5)", model) is not None


def _openai_usage(call: Call, prompt: int, reasoning: int) -> dict[str, Any] | None:
    if "nousage" in call.behaviours:
        return None
    completion = call.chunks + reasoning
    cached = prompt // 2 if "cached" in call.behaviours else 0
    usage: dict[str, Any] = {
        "prompt_tokens": prompt, "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": cached, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": reasoning, "audio_tokens": 0,
                                      "accepted_prediction_tokens": 0,
                                      "rejected_prediction_tokens": 0}}
    if call.provider == "openrouter" and "nocost" not in call.model:
        # float repr is the shortest exact decimal, so Decimal(str(...)) recovers the cost.
        usage["cost"] = float(openrouter_cost(call.model, prompt, completion))
        usage["is_byok"] = False
    return usage


def chat_completions(call: Call) -> Response:
    prompt = max(1, words(call.data.get("messages") or call.data.get("prompt")))
    cap = output_cap(call.data, ("max_completion_tokens", "max_tokens"))
    usage = _openai_usage(call, prompt, call.limit_output(cap, _is_reasoning(call.model)))
    cost = Decimal(str(usage["cost"])) if usage and "cost" in usage else None
    texts = reply_chunks(call.chunks)
    base: dict[str, Any] = {"id": f"chatcmpl-{uuid.uuid4().hex[:24]}", "created": int(time.time()),
                            "model": call.model, "service_tier": "default",
                            "system_fingerprint": "fp_fake"}
    if call.provider == "openrouter":
        base["provider"] = "FakeProvider"
    if not call.data.get("stream"):
        obj = {**base, "object": "chat.completion", "choices": [{
            "index": 0, "message": {"role": "assistant", "content": "".join(texts),
                                    "refusal": None},
            "logprobs": None, "finish_reason": "stop"}]}
        if usage:
            obj["usage"] = usage
        return call.json(obj, usage, cost)
    include = bool((call.data.get("stream_options") or {}).get("include_usage"))
    extra = {"usage": None} if include and call.provider == "openai" else {}

    def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return sse({**base, "object": "chat.completion.chunk", "choices": [choice], **extra})

    pieces = [b": OPENROUTER PROCESSING\n\n"] if call.provider == "openrouter" else []
    pieces.append(chunk({"role": "assistant", "content": "", "refusal": None}))
    cut = len(pieces) + max(1, call.chunks // 2)
    pieces += [chunk({"content": t}) for t in texts]
    pieces.append(chunk({}, "stop"))
    told = None
    if usage and call.provider == "openrouter":  # OpenRouter: usage rides on the last chunk
        told = usage
        pieces.append(sse({**base, "object": "chat.completion.chunk", "choices": [{
            "index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None,
            "native_finish_reason": None, "logprobs": None}], "usage": usage}))
    elif usage and include:  # OpenAI: a final chunk with no choices carries usage
        told = usage
        pieces.append(sse({**base, "object": "chat.completion.chunk", "choices": [],
                            "usage": usage}))
    pieces.append(b"data: [DONE]\n\n")
    return call.stream(pieces, cut, "text/event-stream", lambda: call.bill(told, True, cost))


def responses(call: Call) -> Response:
    prompt = max(1, words(call.data.get("input")) + words(call.data.get("instructions")))
    reasoning = call.limit_output(output_cap(call.data, ("max_output_tokens",)),
                                  _is_reasoning(call.model))
    chat_usage = _openai_usage(call, prompt, reasoning)
    usage = None
    if chat_usage:
        usage = {"input_tokens": prompt,
                 "input_tokens_details": chat_usage["prompt_tokens_details"] | {},
                 "output_tokens": chat_usage["completion_tokens"],
                 "output_tokens_details": {"reasoning_tokens": chat_usage[
                     "completion_tokens_details"]["reasoning_tokens"]},
                 "total_tokens": chat_usage["total_tokens"]}
        del usage["input_tokens_details"]["audio_tokens"]
    texts = reply_chunks(call.chunks)
    rid, mid = f"resp_{uuid.uuid4().hex}", f"msg_{uuid.uuid4().hex}"
    part = {"type": "output_text", "annotations": [], "logprobs": [], "text": "".join(texts)}
    item = {"id": mid, "type": "message", "status": "completed", "content": [part],
            "role": "assistant"}
    final = {**_response_fields(call), "id": rid, "created_at": int(time.time()),
             "status": "completed", "output": [item], "usage": usage}
    if not call.data.get("stream"):
        return call.json(final, usage)
    seq = iter(range(10_000))

    def ev(kind: str, **fields: Any) -> bytes:
        return sse({"type": kind, "sequence_number": next(seq), **fields}, event=kind)

    # OpenAI's event sequence: an item is added, then its content part, then the part's text
    # deltas; each closes in reverse order (the SDKs' stream accumulators rely on it).
    at = {"item_id": mid, "output_index": 0, "content_index": 0}
    started = {**final, "status": "in_progress", "output": [], "usage": None}
    pieces = [ev("response.created", response=started),
              ev("response.in_progress", response=started),
              ev("response.output_item.added", output_index=0,
                 item={**item, "status": "in_progress", "content": []}),
              ev("response.content_part.added", **at, part={**part, "text": ""})]
    cut = len(pieces) + max(1, call.chunks // 2)
    pieces += [ev("response.output_text.delta", **at, delta=t, logprobs=[]) for t in texts]
    pieces += [ev("response.output_text.done", **at, text=part["text"], logprobs=[]),
               ev("response.content_part.done", **at, part=part),
               ev("response.output_item.done", output_index=0, item=item),
               ev("response.completed", response=final)]
    return call.stream(pieces, cut, "text/event-stream", lambda: call.bill(usage, True))


def _response_fields(call: Call) -> dict[str, Any]:
    """The fields a Responses API `response` object carries besides its output and usage."""
    data = call.data
    return {"object": "response", "background": False, "error": None, "incomplete_details": None,
            "instructions": data.get("instructions"),
            "max_output_tokens": data.get("max_output_tokens"), "max_tool_calls": None,
            "model": call.model, "parallel_tool_calls": True, "previous_response_id": None,
            "reasoning": {"effort": None, "summary": None}, "service_tier": "default",
            "store": True, "temperature": 1.0, "text": {"format": {"type": "text"}},
            "tool_choice": "auto", "tools": [], "top_logprobs": 0, "top_p": 1.0,
            "truncation": "disabled", "user": None, "metadata": {}}


def embeddings(call: Call) -> Response:
    raw = call.data.get("input", "")
    texts = [raw] if isinstance(raw, str) else [t if isinstance(t, str) else str(t) for t in raw]
    dims = int(call.data.get("dimensions") or 8)
    data = []
    for i, text in enumerate(texts):
        vec: Any = embed(text, dims)
        if call.data.get("encoding_format") == "base64":  # what the openai SDK asks for
            vec = base64.b64encode(struct.pack(f"<{dims}f", *vec)).decode()
        data.append({"object": "embedding", "index": i, "embedding": vec})
    tokens = sum(max(1, words(t)) for t in texts)
    usage = None if "nousage" in call.behaviours else {"prompt_tokens": tokens,
                                                        "total_tokens": tokens}
    obj: dict[str, Any] = {"object": "list", "data": data, "model": call.model}
    if usage:
        obj["usage"] = usage
    return call.json(obj, usage)


def models(call: Call) -> Response:
    if call.provider == "openrouter":
        return JSONResponse({"data": [
            {"id": m, "name": m, "context_length": 128000,
             "pricing": {"prompt": p, "completion": c, "request": "0", "image": "0"}}
            for m, (p, c) in OPENROUTER_PRICES.items()]})
    return JSONResponse({"object": "list", "data": [
        {"id": m, "object": "model", "created": 1700000000, "owned_by": "system"}
        for m in OPENAI_MODELS]})


def speech(call: Call) -> Response:
    text = str(call.data.get("input", ""))
    audio = b"ID3\x04\x00\x00\x00\x00\x00\x00" + hashlib.sha256(text.encode()).digest() * 64
    pieces = [audio[i: i + 512] for i in range(0, len(audio), 512)]
    usage = {"input_characters": len(text)}  # not told to the client; what the provider bills
    return call.stream(pieces, 2, "audio/mpeg", lambda: call.bill(usage, False))


def transcriptions(call: Call) -> Response:
    audio = call.data.get("file") or b""
    seconds = max(1, math.ceil(len(audio) / 32000))  # as if 16 kHz 16-bit mono
    text = f"Fake transcription of {len(audio)} bytes."
    usage: dict[str, Any] | None
    if "nousage" in call.behaviours:
        usage = None
    elif call.model.startswith("whisper"):
        usage = {"type": "duration", "seconds": seconds}
    else:
        audio_tokens, out = seconds * 10, words(text)
        usage = {"type": "tokens", "input_tokens": audio_tokens,
                 "input_token_details": {"text_tokens": 0, "audio_tokens": audio_tokens},
                 "output_tokens": out, "total_tokens": audio_tokens + out}
    if call.data.get("response_format") == "text":
        call.bill(usage, False)
        return Response(text, media_type="text/plain")
    return call.json({"text": text, **({"usage": usage} if usage else {})}, usage)


def images(call: Call) -> Response:
    n = int(call.data.get("n") or 1)
    png = base64.b64encode(b"\x89PNG\r\n\x1a\nfake").decode()
    obj: dict[str, Any] = {"created": int(time.time()), "data": [{"b64_json": png}] * n}
    usage = None
    if call.model.startswith("gpt-image") and "nousage" not in call.behaviours:
        per = {"low": 272, "medium": 1056, "high": 4160}.get(call.data.get("quality"), 1056)
        prompt = max(1, words(call.data.get("prompt")))
        usage = {"total_tokens": prompt + per * n, "input_tokens": prompt,
                 "output_tokens": per * n,
                 "input_tokens_details": {"text_tokens": prompt, "image_tokens": 0}}
        obj["usage"] = usage
    return call.json(obj, usage or {"images": n})


OPENAI_ROUTES: dict[tuple[str, str], Callable[[Call], Response]] = {
    ("POST", "v1/chat/completions"): chat_completions,
    ("POST", "v1/responses"): responses,
    ("POST", "v1/embeddings"): embeddings,
    ("GET", "v1/models"): models,
    ("POST", "v1/audio/speech"): speech,
    ("POST", "v1/audio/transcriptions"): transcriptions,
    ("POST", "v1/audio/translations"): transcriptions,
    ("POST", "v1/images/generations"): images,
}
OPENROUTER_ROUTES = {k: OPENAI_ROUTES[k] for k in [("POST", "v1/chat/completions"),
                                                   ("POST", "v1/embeddings"), ("GET", "v1/models")]}


