"""The built-in demo model for `aipipe serve --dev` with no OpenAI key.

An httpx transport that answers OpenAI's chat, responses and embeddings endpoints for the model
`aipipe-demo` with a short, clearly labelled Markdown reply to the last user message (a list and a
code block, so the playground shows what it renders), streamed word by word in OpenAI's own
shapes — so a local trial shows real streaming, costs and budgets. It is priced at a nominal rate
in the price table. Any other model gets a clear error naming the missing key.

Every answer is a byte stream, as from the network: the relay reads them all the same way.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import re
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx

DEMO_MODEL = "aipipe-demo"
DEMO_KEY = "demo-key-not-secret"
CHUNK_DELAY = 0.02
QUOTE_WORDS = 24  # how much of the user's message the reply quotes back
REPLY = """[AI Pipe demo model] This reply comes from the relay's built-in demo, not a real LLM.

You said: {quote}

What the demo shows:
- streaming, word by word, as a real model answers
- a cost for every call, charged to your budget
- Markdown: **bold**, lists and code

```python
from openai import OpenAI
client = OpenAI(api_key=TOKEN, base_url=RELAY + "/openai/v1")
```

Set `OPENAI_API_KEY` (or `OPENROUTER_API_KEY` / `GEMINI_API_KEY`) to talk to real models.
"""


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
            return _json(200, {"object": "list", "data": [
                {"id": DEMO_MODEL, "object": "model", "created": 0, "owned_by": "aipipe"}]})
        body = json.loads(await request.aread() or b"{}")
        if body.get("model") != DEMO_MODEL:
            return _json(404, {"error": {
                "message": f"Only the demo model '{DEMO_MODEL}' is available: this relay has no "
                "OPENAI_API_KEY. Set one to use real OpenAI models.",
                "type": "invalid_request_error", "param": "model", "code": "model_not_found"}})
        if path.endswith("/v1/embeddings"):
            return _json(200, _embeddings(body))
        words = reply_words(last_user_text(body))
        limit = body.get("max_completion_tokens") or body.get("max_tokens") or body.get("max_output_tokens")
        if isinstance(limit, int) and not isinstance(limit, bool) and limit > 0:
            words = words[:limit]
        usage_in = max(1, math.ceil(len(_prompt_text(body)) / 4))
        if path.endswith("/v1/responses"):
            if body.get("stream"):
                return _sse(_response_events(words, usage_in))
            return _json(200, _response(words, usage_in, "completed"))
        if body.get("stream"):
            options = body.get("stream_options")
            usage = isinstance(options, dict) and options.get("include_usage") is True
            return _sse(_chat_events(words, usage_in, usage))
        return _json(200, _chat(words, usage_in))


def reply_words(message: str) -> list[str]:
    """The reply to `message`, as the pieces it streams in: each word with the spaces or line
    breaks after it, so the pieces join back into the Markdown exactly."""
    said = message.split()
    quote = " ".join(said[:QUOTE_WORDS]) + (" …" if len(said) > QUOTE_WORDS else "")
    return re.findall(r"\S+\s*", REPLY.format(quote=f"“{quote}”" if quote else "(nothing)"))


def last_user_text(body: dict[str, Any]) -> str:
    """The text of the last user message: chat `messages`, or Responses API `input` (a string or
    a list of items), content given as a string or as text parts."""
    items = body.get("messages") if "messages" in body else body.get("input", "")
    if isinstance(items, str):
        return items
    users = [m for m in items if isinstance(m, dict) and m.get("role", "user") == "user"] \
        if isinstance(items, list) else []
    if not users:
        return ""
    content = users[-1].get("content")
    if isinstance(content, str):
        return content
    parts = content if isinstance(content, list) else []
    return " ".join(p["text"] for p in parts if isinstance(p, dict) and isinstance(p.get("text"), str))


def _prompt_text(body: dict[str, Any]) -> str:
    """Everything the prompt holds (the whole conversation is billed as input)."""
    value = body.get("messages", body.get("input", ""))
    return value if isinstance(value, str) else json.dumps(value)


def _json(status: int, data: dict[str, Any]) -> httpx.Response:
    async def once() -> AsyncIterator[bytes]:
        yield json.dumps(data).encode()

    return httpx.Response(status, headers={"content-type": "application/json"}, stream=_Stream(once()))


def _sse(events: Iterator[bytes]) -> httpx.Response:
    async def paced() -> AsyncIterator[bytes]:
        for i, event in enumerate(events):
            if i:
                await asyncio.sleep(CHUNK_DELAY)
            yield event

    return httpx.Response(200, headers={"content-type": "text/event-stream"}, stream=_Stream(paced()))


def _event(data: dict[str, Any], name: str | None = None) -> bytes:
    return (f"event: {name}\n" if name else "").encode() + b"data: " + json.dumps(data).encode() + b"\n\n"


def _usage(inp: int, out: int) -> dict[str, int]:
    return {"prompt_tokens": inp, "completion_tokens": out, "total_tokens": inp + out}


def _chat(words: list[str], inp: int) -> dict[str, Any]:
    return {
        "id": "chatcmpl-demo", "object": "chat.completion", "created": int(time.time()),
        "model": DEMO_MODEL,
        "choices": [{"index": 0, "finish_reason": "stop", "logprobs": None,
                     "message": {"role": "assistant", "content": "".join(words), "refusal": None}}],
        "usage": _usage(inp, len(words)),
    }


def _chat_events(words: list[str], inp: int, usage: bool) -> Iterator[bytes]:
    """OpenAI's chunks: the role, a piece of text each, the finish reason, then — only when the
    request asked for it — a chunk with no choices that carries the usage."""
    base = {"id": "chatcmpl-demo", "object": "chat.completion.chunk", "created": int(time.time()),
            "model": DEMO_MODEL, "system_fingerprint": "fp_aipipe_demo",
            **({"usage": None} if usage else {})}

    def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return _event({**base, "choices": [choice]})

    yield chunk({"role": "assistant", "content": "", "refusal": None})
    for word in words:
        yield chunk({"content": word})
    yield chunk({}, "stop")
    if usage:
        yield _event({**base, "choices": [], "usage": _usage(inp, len(words))})
    yield b"data: [DONE]\n\n"


def _response(words: list[str], inp: int, status: str) -> dict[str, Any]:
    text = "".join(words)
    done = status == "completed"
    return {
        "id": "resp_demo", "object": "response", "created_at": int(time.time()), "status": status,
        "model": DEMO_MODEL, "error": None, "incomplete_details": None, "tools": [],
        "tool_choice": "auto", "parallel_tool_calls": True, "text": {"format": {"type": "text"}},
        "output": [_message(text)] if done else [],
        "usage": {"input_tokens": inp, "input_tokens_details": {"cached_tokens": 0},
                  "output_tokens": len(words), "output_tokens_details": {"reasoning_tokens": 0},
                  "total_tokens": inp + len(words)} if done else None,
    }


def _message(text: str, status: str = "completed") -> dict[str, Any]:
    content = [{"type": "output_text", "text": text, "annotations": []}] if status == "completed" else []
    return {"id": "msg_demo", "type": "message", "status": status, "role": "assistant",
            "content": content}


def _response_events(words: list[str], inp: int) -> Iterator[bytes]:
    """The Responses API's stream: the response is created, a message item and its text part are
    added, the text arrives in deltas, each closes, and the response completes with its usage."""
    seq = iter(range(1_000_000))
    text = "".join(words)
    at = {"item_id": "msg_demo", "output_index": 0, "content_index": 0}
    part = {"type": "output_text", "text": text, "annotations": []}

    def event(kind: str, **fields: Any) -> bytes:
        return _event({"type": kind, "sequence_number": next(seq), **fields}, kind)

    started = _response(words, inp, "in_progress")
    yield event("response.created", response=started)
    yield event("response.in_progress", response=started)
    yield event("response.output_item.added", output_index=0, item=_message("", "in_progress"))
    yield event("response.content_part.added", **at, part={**part, "text": ""})
    for word in words:
        yield event("response.output_text.delta", **at, delta=word, logprobs=[])
    yield event("response.output_text.done", **at, text=text, logprobs=[])
    yield event("response.content_part.done", **at, part=part)
    yield event("response.output_item.done", output_index=0, item=_message(text))
    yield event("response.completed", response=_response(words, inp, "completed"))


def _embeddings(body: dict[str, Any]) -> dict[str, Any]:
    texts = body.get("input", [])
    texts = [texts] if isinstance(texts, str) else list(texts)
    data = []
    for i, text in enumerate(texts):
        digest = hashlib.sha256(str(text).encode()).digest()
        vector = [b / 255 - 0.5 for b in digest[:16]]
        data.append({"object": "embedding", "index": i, "embedding": vector})
    tokens = sum(max(1, len(str(t)) // 4) for t in texts)
    return {"object": "list", "data": data, "model": DEMO_MODEL,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}
