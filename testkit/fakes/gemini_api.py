"""The fake Gemini (generativelanguage v1beta) endpoints, under `/gemini`."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

from starlette.responses import JSONResponse, Response

from .protocol import GEMINI_MODELS, Call, embed, output_cap, reply_chunks, sse, words

_CONFIG = ("generationConfig", "generation_config")


def _thinks(call: Call) -> bool:
    config = next((call.data[s] for s in _CONFIG if isinstance(call.data.get(s), dict)), {})
    thinking = config.get("thinkingConfig") or config.get("thinking_config") or {}
    budget = thinking.get("thinkingBudget", thinking.get("thinking_budget"))
    return "2.5" in call.model and "lite" not in call.model and budget != 0


def _gemini_usage(call: Call, prompt: int, candidates: int, thoughts: int
                  ) -> dict[str, Any] | None:
    if "nousage" in call.behaviours:
        return None
    usage: dict[str, Any] = {"promptTokenCount": prompt, "candidatesTokenCount": candidates,
                             "totalTokenCount": prompt + candidates + thoughts,
                             "promptTokensDetails": [{"modality": "TEXT", "tokenCount": prompt}]}
    if thoughts:
        usage["thoughtsTokenCount"] = thoughts
    if "cached" in call.behaviours:
        usage["cachedContentTokenCount"] = prompt // 2
    return usage


def gemini_generate(call: Call, stream: bool) -> Response:
    prompt = max(1, words(call.data.get("contents")) + words(call.data.get("systemInstruction")))
    cap = output_cap(call.data, ("maxOutputTokens", "max_output_tokens"), _CONFIG)
    thoughts = call.limit_output(cap, _thinks(call))
    texts = reply_chunks(call.chunks)
    rid = uuid.uuid4().hex[:20]

    def obj(parts: list[str], done: bool, so_far: int) -> dict[str, Any]:
        cand: dict[str, Any] = {"content": {"parts": [{"text": "".join(parts)}], "role": "model"},
                                "index": 0}
        if done:
            cand["finishReason"] = "STOP"
        out: dict[str, Any] = {"candidates": [cand], "modelVersion": call.model, "responseId": rid}
        usage = _gemini_usage(call, prompt, so_far, thoughts)
        if usage:
            out["usageMetadata"] = usage
        return out

    usage = _gemini_usage(call, prompt, call.chunks, thoughts)
    if not stream:
        return call.json(obj(texts, True, call.chunks), usage)
    events = [obj([t], i == len(texts) - 1, i + 1) for i, t in enumerate(texts)]
    cut = max(1, call.chunks // 2)
    if call.request.query_params.get("alt") == "sse":  # Google separates events with CRLF
        pieces = [sse(e, sep="\r\n\r\n") for e in events]
        media = "text/event-stream"
    else:  # a JSON array, sent element by element
        pieces = [("[" if i == 0 else "\n,\r\n").encode() + json.dumps(e).encode()
                  for i, e in enumerate(events)] + [b"\n]"]
        media = "application/json"
    return call.stream(pieces, cut, media, lambda: call.bill(usage, True))


def gemini_embed(call: Call, batch: bool) -> Response:
    reqs = call.data.get("requests", []) if batch else [call.data]
    vecs = [{"values": embed(" ".join(p.get("text", "") for p in
                                      (r.get("content") or {}).get("parts", [])),
                             int(r.get("outputDimensionality") or 8))} for r in reqs]
    return call.json({"embeddings": vecs} if batch else {"embedding": vecs[0]}, None)


def gemini_dispatch(call: Call) -> Response | None:
    if call.sub == "models" and call.request.method == "GET":
        return JSONResponse({"models": [{"name": f"models/{m}", "displayName": m}
                                        for m in GEMINI_MODELS]})
    match = re.fullmatch(r"models/[^:/]+:(\w+)", call.sub)
    method = match.group(1) if match and call.request.method == "POST" else ""
    if method == "countTokens":  # free: not billed
        n = max(1, words(call.data.get("contents")))
        return JSONResponse({"totalTokens": n, "promptTokensDetails": [
            {"modality": "TEXT", "tokenCount": n}]})
    if method in ("generateContent", "streamGenerateContent"):
        return gemini_generate(call, method == "streamGenerateContent")
    if method in ("embedContent", "batchEmbedContents"):
        return gemini_embed(call, method == "batchEmbedContents")
    return None


