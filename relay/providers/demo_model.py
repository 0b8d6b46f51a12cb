"""The built-in demo model for `aipipe serve --dev` with no OpenAI key.

An httpx transport that answers OpenAI's chat, responses and embeddings endpoints for the model
`aipipe-demo` with canned, clearly labelled text — streamed chunk by chunk like the real thing —
so a local trial shows real streaming, costs and budgets. It is priced at a nominal rate in the
price table. Any other model gets a clear error naming the missing key.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import time
from collections.abc import AsyncIterator

import httpx

DEMO_MODEL = "aipipe-demo"
DEMO_KEY = "demo-key-not-secret"
REPLY = (
    "[AI Pipe demo model] This reply comes from the relay's built-in demo, not a real LLM: "
    "no provider key is configured. Set OPENAI_API_KEY (or OPENROUTER_API_KEY / GEMINI_API_KEY) "
    "to talk to real models. You said: "
)
CHUNK_DELAY = 0.02


class _Stream(httpx.AsyncByteStream):
    def __init__(self, parts: AsyncIterator[bytes]):
        self._parts = parts

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for part in self._parts:
            yield part


class DemoTransport(httpx.AsyncBaseTransport):
    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if request.method == "GET" and path.endswith("/v1/models"):
            return _json(
                200,
                {
                    "object": "list",
                    "data": [{"id": DEMO_MODEL, "object": "model", "owned_by": "aipipe"}],
                },
            )
        body = json.loads(await request.aread() or b"{}")
        if body.get("model") != DEMO_MODEL:
            return _json(
                404,
                {
                    "error": {
                        "message": f"Only the demo model '{DEMO_MODEL}' is available: this relay has no "
                        "OPENAI_API_KEY. Set one to use real OpenAI models.",
                        "type": "invalid_request_error",
                        "code": "model_not_found",
                    }
                },
            )
        if path.endswith("/v1/embeddings"):
            return _json(200, _embeddings(body))
        prompt = _prompt_text(body)
        words = (REPLY + prompt[:200]).split(" ")
        limit = (
            body.get("max_completion_tokens")
            or body.get("max_tokens")
            or body.get("max_output_tokens")
        )
        if isinstance(limit, int):
            words = words[:limit]
        usage_in = max(1, math.ceil(len(prompt) / 4))
        if path.endswith("/v1/responses"):
            return _json(200, _response(words, usage_in))
        if body.get("stream"):
            return httpx.Response(
                200,
                headers={"content-type": "text/event-stream"},
                stream=_Stream(_chat_stream(words, usage_in)),
            )
        return _json(200, _chat(words, usage_in))


def _json(status: int, data: dict) -> httpx.Response:
    return httpx.Response(
        status, headers={"content-type": "application/json"}, content=json.dumps(data).encode()
    )


def _prompt_text(body: dict) -> str:
    if "messages" in body:
        parts = [m.get("content") for m in body["messages"] if isinstance(m, dict)]
        return " ".join(p for p in parts if isinstance(p, str))
    value = body.get("input", "")
    return value if isinstance(value, str) else json.dumps(value)


def _usage(inp: int, out: int) -> dict:
    return {"prompt_tokens": inp, "completion_tokens": out, "total_tokens": inp + out}


def _chat(words: list[str], inp: int) -> dict:
    return {
        "id": "chatcmpl-demo",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": DEMO_MODEL,
        "choices": [
            {
                "index": 0,
                "finish_reason": "stop",
                "message": {"role": "assistant", "content": " ".join(words)},
            }
        ],
        "usage": _usage(inp, len(words)),
    }


async def _chat_stream(words: list[str], inp: int) -> AsyncIterator[bytes]:
    base = {
        "id": "chatcmpl-demo",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": DEMO_MODEL,
    }
    for i, word in enumerate(words):
        delta = {"content": (" " if i else "") + word}
        yield _event({**base, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]})
        await asyncio.sleep(CHUNK_DELAY)
    yield _event({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    yield _event({**base, "choices": [], "usage": _usage(inp, len(words))})
    yield b"data: [DONE]\n\n"


def _event(data: dict) -> bytes:
    return b"data: " + json.dumps(data).encode() + b"\n\n"


def _response(words: list[str], inp: int) -> dict:
    text = " ".join(words)
    return {
        "id": "resp-demo",
        "object": "response",
        "model": DEMO_MODEL,
        "status": "completed",
        "output": [
            {
                "type": "message",
                "role": "assistant",
                "content": [{"type": "output_text", "text": text}],
            }
        ],
        "output_text": text,
        "usage": {
            "input_tokens": inp,
            "output_tokens": len(words),
            "total_tokens": inp + len(words),
        },
    }


def _embeddings(body: dict) -> dict:
    texts = body.get("input", [])
    texts = [texts] if isinstance(texts, str) else list(texts)
    data = []
    for i, text in enumerate(texts):
        digest = hashlib.sha256(str(text).encode()).digest()
        vector = [b / 255 - 0.5 for b in digest[:16]]
        data.append({"object": "embedding", "index": i, "embedding": vector})
    tokens = sum(max(1, len(str(t)) // 4) for t in texts)
    return {
        "object": "list",
        "data": data,
        "model": DEMO_MODEL,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }
