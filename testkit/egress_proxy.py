"""A small forward proxy on a real port, standing in for a corporate egress proxy: `CONNECT`
tunnels (https) and absolute-form requests (http), optionally behind Basic credentials.

It records what it was asked (`seen`), and reaches targets through `hosts` — a map from the names
a test gives its providers (`api.openai.test:443`) to local addresses — so the relay never needs
those names to resolve: only the proxy knows where they are, as on a network where the relay has
no route out but the proxy.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import threading
from collections.abc import Iterator
from urllib.parse import urlsplit

Address = tuple[str, int]


class EgressProxy:
    def __init__(self, hosts: dict[str, Address] | None = None, credentials: tuple[str, str] | None = None):
        self.hosts = dict(hosts or {})
        self.expected = (
            b"Basic " + base64.b64encode(f"{credentials[0]}:{credentials[1]}".encode())
            if credentials else None
        )
        self.seen: list[str] = []  # "CONNECT host:port", "POST http://host/path", "407 …"
        self.port = 0

    # -- running ----------------------------------------------------------------------------
    @contextlib.contextmanager
    def running(self) -> Iterator[str]:
        """Serve on 127.0.0.1 (a thread with its own event loop); yields the proxy URL."""
        loop = asyncio.new_event_loop()
        ready = threading.Event()
        server: list[asyncio.Server] = []

        async def start() -> None:
            server.append(await asyncio.start_server(self._client, "127.0.0.1", 0))
            self.port = server[0].sockets[0].getsockname()[1]
            ready.set()

        thread = threading.Thread(target=loop.run_forever, daemon=True)
        thread.start()
        asyncio.run_coroutine_threadsafe(start(), loop).result(timeout=10)
        ready.wait(10)
        try:
            yield f"http://127.0.0.1:{self.port}"
        finally:
            async def stop() -> None:
                server[0].close()
                for task in asyncio.all_tasks():
                    if task is not asyncio.current_task():
                        task.cancel()

            asyncio.run_coroutine_threadsafe(stop(), loop).result(timeout=10)
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=10)
            loop.close()

    # -- one client connection --------------------------------------------------------------
    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            line, *header_lines = head.decode("latin-1").split("\r\n")
            method, target, _ = line.split(" ", 2)
            headers = {
                k.strip().lower(): v.strip()
                for k, _, v in (h.partition(":") for h in header_lines if h)
            }
            if self.expected is not None and headers.get("proxy-authorization", "").encode() != self.expected:
                self.seen.append(f"407 {method} {target}")
                writer.write(
                    b"HTTP/1.1 407 Proxy Authentication Required\r\n"
                    b'Proxy-Authenticate: Basic realm="egress"\r\nContent-Length: 0\r\n\r\n'
                )
                await writer.drain()
                return
            if method == "CONNECT":
                await self._tunnel(target, reader, writer)
            else:
                await self._forward(method, target, header_lines, headers, reader, writer)
        except (asyncio.IncompleteReadError, ConnectionError, ValueError):
            pass
        finally:
            writer.close()

    def _where(self, authority: str) -> Address:
        if authority in self.hosts:
            return self.hosts[authority]
        host, _, port = authority.rpartition(":")
        return host, int(port)

    async def _tunnel(self, target: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.seen.append(f"CONNECT {target}")
        try:
            up_reader, up_writer = await asyncio.open_connection(*self._where(target))
        except OSError:
            writer.write(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
            return
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        await writer.drain()
        await _pipe_both(reader, writer, up_reader, up_writer)

    async def _forward(
        self,
        method: str,
        target: str,
        header_lines: list[str],
        headers: dict[str, str],
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        """One absolute-form request, sent on with `Connection: close`, its answer piped back."""
        self.seen.append(f"{method} {target}")
        url = urlsplit(target)
        authority = f"{url.hostname}:{url.port or 80}"
        body = await reader.readexactly(int(headers.get("content-length", "0")))
        up_reader, up_writer = await asyncio.open_connection(*self._where(authority))
        kept = [
            h for h in header_lines
            if h and h.partition(":")[0].strip().lower() not in ("proxy-authorization", "connection")
        ]
        path = url.path or "/"
        if url.query:
            path += "?" + url.query
        up_writer.write(
            "\r\n".join([f"{method} {path} HTTP/1.1", *kept, "Connection: close"]).encode("latin-1")
            + b"\r\n\r\n" + body
        )
        await up_writer.drain()
        await _pipe(up_reader, writer)
        up_writer.close()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except ConnectionError:
        pass


async def _pipe_both(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    up_reader: asyncio.StreamReader,
    up_writer: asyncio.StreamWriter,
) -> None:
    there = asyncio.ensure_future(_pipe(reader, up_writer))
    back = asyncio.ensure_future(_pipe(up_reader, writer))
    await asyncio.wait([there, back], return_when=asyncio.FIRST_COMPLETED)
    there.cancel()
    back.cancel()
    up_writer.close()
