"""A fast fake OpenAI-compatible upstream for the benchmark: raw asyncio (uvloop when present).

It answers `POST /v1/chat/completions` like OpenAI does, with canned bytes so the upstream costs
as little as possible and the relay's own overhead shows:
- non-stream: one chat.completion JSON with `usage`;
- `"stream": true`: 20 content chunks as Server-Sent Events (one HTTP chunk each, written one
  event-loop turn apart so they leave as separate TCP segments), then, when the request asks
  for `stream_options.include_usage` (the relay always does), a usage chunk, then `[DONE]`.
A request header `x-bench-gap-ms: N` spaces the chunks N ms apart (time-to-first-chunk runs).
`GET /healthz` answers 200. Keep-alive throughout; pipelined requests are answered in order.

Run: `python bench/upstream.py --port 9100`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections import deque

MODEL = "gpt-4o-mini-2024-07-18"
CHUNKS = 20
WORDS = ("Hello", " there", "!", " This", " is", " a", " fake", " upstream", " answering", " a",
         " benchmark", " request", " with", " twenty", " small", " chunks", " of", " text", ".", "")
_ID = '"id":"chatcmpl-bench","created":1700000000,"model":"' + MODEL + '"'
USAGE = {
    "prompt_tokens": 12,
    "completion_tokens": 20,
    "total_tokens": 32,
    "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
    "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0},
}
COMPLETION = json.dumps(
    {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": 1700000000,
        "model": MODEL,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "".join(WORDS), "refusal": None},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": USAGE,
        "system_fingerprint": "fp_bench",
    },
    separators=(",", ":"),
).encode()


def _http_chunk(data: bytes) -> bytes:
    return b"%x\r\n%b\r\n" % (len(data), data)


def _event(payload: str) -> bytes:
    return _http_chunk(b"data: " + payload.encode() + b"\n\n")


def _stream_events(with_usage: bool) -> list[bytes]:
    null_usage = ',"usage":null' if with_usage else ""
    events = []
    for i, word in enumerate(WORDS):
        delta = {"content": word} if i else {"role": "assistant", "content": word}
        finish = '"stop"' if i == CHUNKS - 1 else "null"
        events.append(
            _event(
                '{' + _ID + ',"object":"chat.completion.chunk","choices":[{"index":0,"delta":'
                + json.dumps(delta, separators=(",", ":")) + f',"finish_reason":{finish}}}]'
                + null_usage + "}"
            )
        )
    if with_usage:
        usage = json.dumps(USAGE, separators=(",", ":"))
        events.append(
            _event('{' + _ID + ',"object":"chat.completion.chunk","choices":[],"usage":' + usage + "}")
        )
    events.append(_event("[DONE]"))
    events.append(b"0\r\n\r\n")
    return events


STREAM_HEAD = (
    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream; charset=utf-8\r\n"
    b"cache-control: no-cache\r\ntransfer-encoding: chunked\r\nx-request-id: req_bench\r\n\r\n"
)
JSON_ANSWER = (
    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nx-request-id: req_bench\r\n"
    b"content-length: %d\r\n\r\n%b" % (len(COMPLETION), COMPLETION)
)
STREAM_EVENTS = {True: _stream_events(True), False: _stream_events(False)}
_OK = b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 2\r\n\r\nok"
_NOT_FOUND = b"HTTP/1.1 404 Not Found\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}"
_BAD = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"


class UpstreamProtocol(asyncio.Protocol):
    """One keep-alive connection: parse requests off the byte stream and answer them in order."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buf = b""
        self.queue: deque[tuple[bytes | None, bool, float]] = deque()  # answers waiting their turn
        self.streaming = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buf[:end].decode("latin-1")
            lines = head.split("\r\n")
            method, path = [*lines[0].split(" "), "", ""][:2]
            headers = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            if headers.get("transfer-encoding", "").lower() == "chunked":
                self._send(_BAD)  # the relay and wrk send content-length; keep the fake small
                if self.transport is not None:
                    self.transport.close()
                return
            size = int(headers.get("content-length") or 0)
            if len(self.buf) < end + 4 + size:
                return
            body = self.buf[end + 4 : end + 4 + size]
            self.buf = self.buf[end + 4 + size :]
            self._answer(method, path, headers, body)

    def _answer(self, method: str, path: str, headers: dict[str, str], body: bytes) -> None:
        if method == "GET" and path == "/healthz":
            self._send(_OK)
        elif method != "POST" or not path.startswith("/v1/chat/completions"):
            self._send(_NOT_FOUND)
        else:
            try:
                data = json.loads(body)
            except ValueError:
                self._send(_BAD)
                return
            if data.get("stream") is not True:
                self._send(JSON_ANSWER)
                return
            options = data.get("stream_options") or {}
            with_usage = isinstance(options, dict) and options.get("include_usage") is True
            gap = float(headers.get("x-bench-gap-ms") or 0) / 1000
            self.queue.append((None, with_usage, gap))
            if not self.streaming:
                self.streaming = True
                asyncio.get_running_loop().create_task(self._drain())

    def _send(self, answer: bytes) -> None:
        """Answer now, or after the stream in flight (pipelined requests keep their order)."""
        if self.streaming:
            self.queue.append((answer, False, 0.0))
        elif self.transport is not None:
            self.transport.write(answer)

    async def _drain(self) -> None:
        try:
            while self.queue and self.transport is not None:
                answer, with_usage, gap = self.queue.popleft()
                if answer is not None:
                    self.transport.write(answer)
                    continue
                self.transport.write(STREAM_HEAD)
                for event in STREAM_EVENTS[with_usage]:
                    if self.transport is None:
                        return
                    self.transport.write(event)
                    await asyncio.sleep(gap)  # 0: one loop turn, so chunks leave one by one
        finally:
            self.streaming = False


async def serve(host: str, port: int) -> asyncio.Server:
    loop = asyncio.get_running_loop()
    return await loop.create_server(UpstreamProtocol, host, port, backlog=1024, reuse_address=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9100)
    args = parser.parse_args()
    try:
        import uvloop
    except ImportError:  # plain asyncio is slower but correct
        uvloop = None

    async def run() -> None:
        server = await serve(args.host, args.port)
        print(f"fake upstream on http://{args.host}:{args.port}", flush=True)
        async with server:
            await server.serve_forever()

    if uvloop is not None:
        uvloop.run(run())
    else:
        asyncio.run(run())


if __name__ == "__main__":
    main()
