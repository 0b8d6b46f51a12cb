"""A tiny blocking HTTP/1.1 client for precise single-connection timings (stdlib only).

wrk measures throughput well; for "how much does the relay add to one request" and "when does
the first chunk of a stream arrive" a sequential client on a kept-alive socket is more exact.
"""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes
    first_chunk_s: float  # request sent -> first body bytes (a stream's first event)
    total_s: float  # request sent -> whole answer read


class Connection:
    """One kept-alive connection to host:port; `request()` sends and reads one whole answer."""

    def __init__(self, host: str, port: int, timeout: float = 10.0):
        self.host, self.port = host, port
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def request(
        self, method: str, path: str, headers: dict[str, str] | None = None, body: bytes = b""
    ) -> Answer:
        lines = [f"{method} {path} HTTP/1.1", f"host: {self.host}:{self.port}"]
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        if body or method in ("POST", "PUT", "PATCH"):
            lines.append(f"content-length: {len(body)}")
        raw = ("\r\n".join(lines) + "\r\n\r\n").encode() + body
        started = time.perf_counter()
        self.sock.sendall(raw)
        status, head = self._head()
        first = None
        if head.get("transfer-encoding", "").lower() == "chunked":
            parts = []
            while True:
                size_line = self._line()
                size = int(size_line.split(b";")[0], 16)
                if size == 0:
                    self._line()
                    break
                data = self._exactly(size + 2)[:-2]
                if first is None:
                    first = time.perf_counter()
                parts.append(data)
            content = b"".join(parts)
        else:
            content = self._exactly(int(head.get("content-length", "0")))
            first = time.perf_counter()
        done = time.perf_counter()
        return Answer(status, head, content, (first or done) - started, done - started)

    def _fill(self) -> None:
        data = self.sock.recv(65536)
        if not data:
            raise ConnectionError("the server closed the connection")
        self.buf += data

    def _line(self) -> bytes:
        while (at := self.buf.find(b"\r\n")) < 0:
            self._fill()
        line, self.buf = self.buf[:at], self.buf[at + 2 :]
        return line

    def _exactly(self, size: int) -> bytes:
        while len(self.buf) < size:
            self._fill()
        data, self.buf = self.buf[:size], self.buf[size:]
        return data

    def _head(self) -> tuple[int, dict[str, str]]:
        status = int(self._line().split(b" ")[1])
        headers: dict[str, str] = {}
        while line := self._line():
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        return status, headers


def wait_for_answer(
    host: str, port: int, method: str, path: str, headers: dict[str, str], body: bytes,
    timeout: float = 15.0,
) -> float:
    """Poll until a request answers 200; returns when it did (perf_counter seconds)."""
    deadline = time.perf_counter() + timeout
    while True:
        try:
            with Connection(host, port, timeout=timeout) as conn:
                answer = conn.request(method, path, headers, body)
            if answer.status == 200:
                return time.perf_counter()
            raise RuntimeError(f"{path} answered {answer.status}: {answer.body[:300]!r}")
        except (ConnectionRefusedError, ConnectionResetError):
            if time.perf_counter() > deadline:
                raise
            time.sleep(0.002)


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    at = min(len(ordered) - 1, max(0, round(pct / 100 * (len(ordered) - 1))))
    return ordered[at]
