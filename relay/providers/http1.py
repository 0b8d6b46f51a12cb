"""A lean HTTP/1.1 transport for httpx: the relay's upstream client on the hot path.

httpx's default transport (httpcore on anyio) spends most of a proxied call's CPU in its pool:
on every request and every release it walks all connections, polls each idle socket to see if
the server closed it, and counts idle connections once per idle connection (quadratic). Here
each connection is an asyncio Protocol, so a server's close arrives as a callback — taking a
pooled connection is a list pop, with no system call. Responses are parsed by httptools (C),
bodies are handed over as they arrive (no buffering beyond a 256 KB flow-control window).

Keeps httpx's interface: requests and responses are httpx objects, errors are httpx exceptions,
the `timeout` and `sni_hostname` request extensions are honoured. HTTP/1.1 only (like httpx's
default). An egress proxy (relay.providers.egress) is used when one is set: `CONNECT` then TLS for
https targets, absolute-form requests for http ones; without one, nothing on the hot path changes.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import AsyncIterator
from typing import Any

import httptools
import httpx

from relay.providers.egress import Egress, ProxyRefused, ProxyServer, open_tunnel

_HIGH_WATER = 256 * 1024  # pause reading the socket when this much body waits for the reader
_LOW_WATER = 64 * 1024
_Key = tuple[bytes, str, int, str]  # scheme, host, port, TLS server name


class _Connection(asyncio.Protocol):
    """One upstream connection: sends a request, parses its answer, then idles in the pool."""

    def __init__(self, key: _Key) -> None:
        self.key = key
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.head_request = False  # a HEAD answer has no body, whatever its headers say
        self.idle_since = 0.0
        self._reset()

    def _reset(self) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.status = 0
        self.reason = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.head_done = False
        self.keep_alive = False
        self.complete = False
        self.until_eof = False  # body ends when the server closes (no length, not chunked)
        self.received = 0  # response bytes seen (0 after a failure: a stale pooled connection)
        self.chunks: list[bytes] = []
        self.buffered = 0
        self.paused = False
        self.error: Exception | None = None
        self.waiter: asyncio.Future[None] | None = None

    # -- asyncio callbacks ----------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.received += len(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as e:
            self._fail(httpx.RemoteProtocolError(f"Malformed response from the upstream: {e}"))
            self.close()

    def eof_received(self) -> bool:
        return False  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.head_done and self.until_eof and not self.complete and exc is None:
            self.complete = True  # a body delimited by the close has ended normally
            self._wake()
        elif not self.complete:
            reason = f" ({exc})" if exc else ""
            self._fail(httpx.RemoteProtocolError(f"Server disconnected{reason}"))

    def pause_writing(self) -> None:  # writes are buffered by the transport; bodies are bounded
        pass

    def resume_writing(self) -> None:
        pass

    # -- httptools callbacks --------------------------------------------------------------------
    def on_status(self, status: bytes) -> None:
        self.reason += status

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        self.status = self.parser.get_status_code()
        names = {k.lower() for k, _ in self.headers}
        self.until_eof = (
            b"content-length" not in names
            and b"transfer-encoding" not in names
            and self.status not in (204, 304)
            and self.status >= 200
        )
        self.keep_alive = self.parser.should_keep_alive()  # only valid before the body is read
        self.head_done = True
        if self.head_request:
            self.complete = True
        self._wake()

    def on_body(self, body: bytes) -> None:
        self.chunks.append(body)
        self.buffered += len(body)
        if self.buffered > _HIGH_WATER and not self.paused and self.transport is not None:
            self.paused = True
            self.transport.pause_reading()
        self._wake()

    def on_message_complete(self) -> None:
        self.complete = True
        self._wake()

    # -- used by the transport ------------------------------------------------------------------
    def _wake(self) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _fail(self, error: Exception) -> None:
        if self.error is None:
            self.error = error
        self._wake()

    async def wait(self, timeout: float | None, request: httpx.Request) -> None:
        """Wait for the next parser event (headers, body bytes, end, or failure)."""
        loop = asyncio.get_running_loop()
        self.waiter = waiter = loop.create_future()
        timer = loop.call_later(timeout, _expire, waiter) if timeout is not None else None
        try:
            await waiter
        except TimeoutError as e:
            self.close()
            raise httpx.ReadTimeout("Timed out reading from the upstream", request=request) from e
        finally:
            self.waiter = None
            if timer is not None:
                timer.cancel()

    def take(self) -> bytes:
        data = self.chunks[0] if len(self.chunks) == 1 else b"".join(self.chunks)
        self.chunks = []
        self.buffered = 0
        if self.paused and self.transport is not None:
            self.paused = False
            self.transport.resume_reading()
        return data

    def reusable(self) -> bool:
        return (
            self.complete
            and not self.closed
            and not self.until_eof
            and not self.head_request
            and self.keep_alive
        )

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


def _expire(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_exception(TimeoutError())


class _Body(httpx.AsyncByteStream):
    """The response body as it arrives; gives the connection back to the pool at the end."""

    def __init__(self, pool: Http1Transport, conn: _Connection, request: httpx.Request, read: float | None):
        self._pool, self._conn, self._request, self._read = pool, conn, request, read
        self._released = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        conn = self._conn
        while True:
            if conn.chunks:
                yield conn.take()
            elif conn.complete:
                break
            elif conn.error is not None:
                raise _with_request(conn.error, self._request)
            else:
                await conn.wait(self._read, self._request)
        await self.aclose()

    async def aclose(self) -> None:
        if not self._released:
            self._released = True
            self._pool.release(self._conn)


class Http1Transport(httpx.AsyncBaseTransport):
    """Pooled keep-alive HTTP/1.1 connections, one idle list per (scheme, host, port, SNI)."""

    def __init__(self, *, max_keepalive: int = 200, keepalive_expiry: float = 5.0,
                 ssl_context: ssl.SSLContext | None = None, egress: Egress | None = None):
        self._idle: dict[_Key, list[_Connection]] = {}
        self._idle_count = 0
        self._max_keepalive = max_keepalive
        self._expiry = keepalive_expiry
        self._ssl = ssl_context
        self._egress = egress
        self._via: dict[_Key, ProxyServer | None] = {}  # each target's route, decided once
        self._closed = False

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        timeout: dict[str, Any] = request.extensions.get("timeout", {})
        url = request.url
        scheme = url.raw_scheme
        port = url.port or (443 if scheme == b"https" else 80)
        key: _Key = (scheme, url.host, port, request.extensions.get("sni_hostname") or url.host)
        via = None if self._egress is None else self._route(key)
        head, chunked = _serialize(request, via if scheme == b"http" else None)
        replayable = isinstance(request.stream, httpx.ByteStream)
        for attempt in (0, 1):
            conn = self._checkout(key)
            reused = conn is not None
            if conn is None:
                conn = await self._connect(key, timeout.get("connect"), request, via)
            conn.head_request = request.method == "HEAD"
            try:
                await _send(conn, head, request.stream, chunked)
                while not conn.head_done:
                    if conn.error is not None:
                        raise _with_request(conn.error, request)
                    await conn.wait(timeout.get("read"), request)
            except httpx.RemoteProtocolError:
                conn.close()
                if reused and attempt == 0 and conn.received == 0 and replayable:
                    continue  # the server closed this idle connection as we reused it: retry once
                raise
            except BaseException:
                conn.close()  # cancelled or failed mid-request: the connection is unusable
                raise
            return httpx.Response(
                conn.status,
                headers=conn.headers,
                stream=_Body(self, conn, request, timeout.get("read")),
                extensions={"http_version": b"HTTP/1.1", "reason_phrase": conn.reason},
                request=request,
            )
        raise AssertionError("unreachable")

    def _checkout(self, key: _Key) -> _Connection | None:
        idle = self._idle.get(key)
        now = time.monotonic()
        while idle:
            conn = idle.pop()
            self._idle_count -= 1
            if not conn.closed and now - conn.idle_since < self._expiry:
                conn._reset()
                return conn
            conn.close()
        return None

    def _route(self, key: _Key) -> ProxyServer | None:
        try:
            return self._via[key]
        except KeyError:
            assert self._egress is not None
            scheme, host, port, _ = key
            if len(self._via) >= 1024:  # bounded, though targets are the operator's bases
                self._via.clear()
            via = self._via[key] = self._egress.proxy_for(scheme.decode(), host, port)
            return via

    async def _connect(
        self, key: _Key, timeout: float | None, request: httpx.Request, via: ProxyServer | None = None
    ) -> _Connection:
        scheme, host, port, sni = key
        context = None
        if scheme == b"https":
            if self._ssl is None:
                self._ssl = httpx.create_ssl_context()
                self._ssl.set_alpn_protocols(["http/1.1"])
            context = self._ssl
        loop = asyncio.get_running_loop()
        where = f"{host}:{port}" + (f" through the egress proxy {via}" if via else "")
        try:
            if via is None:
                _, conn = await asyncio.wait_for(
                    loop.create_connection(
                        lambda: _Connection(key), host, port, ssl=context,
                        server_hostname=sni if context else None,
                    ),
                    timeout,
                )
            elif context is None:  # http: a connection to the proxy; requests in absolute form
                _, conn = await asyncio.wait_for(
                    loop.create_connection(lambda: _Connection(key), via.host, via.port), timeout
                )
            else:  # https: TLS with the target inside a CONNECT tunnel
                conn = await asyncio.wait_for(
                    open_tunnel(via, host, port, sni, context, lambda: _Connection(key)), timeout
                )
        except TimeoutError as e:
            raise httpx.ConnectTimeout(f"Timed out connecting to {where}", request=request) from e
        except ProxyRefused as e:
            raise httpx.ProxyError(str(e), request=request) from e
        except (OSError, ssl.SSLError) as e:
            raise httpx.ConnectError(f"Could not connect to {where}: {e}", request=request) from e
        return conn

    def release(self, conn: _Connection) -> None:
        if self._closed or not conn.reusable() or self._idle_count >= self._max_keepalive:
            conn.close()
            return
        conn.idle_since = time.monotonic()
        self._idle.setdefault(conn.key, []).append(conn)
        self._idle_count += 1

    async def aclose(self) -> None:
        self._closed = True
        for idle in self._idle.values():
            for conn in idle:
                conn.close()
        self._idle.clear()
        self._idle_count = 0


def _serialize(request: httpx.Request, proxy: ProxyServer | None = None) -> tuple[bytes, bool]:
    """The request head; through an http proxy, in absolute form with the proxy's credentials."""
    url = request.url
    target = url.raw_path
    if proxy is not None:
        target = url.raw_scheme + b"://" + url.netloc + target
    lines = [b"%b %b HTTP/1.1" % (request.method.encode(), target)]
    chunked = False
    for name, value in request.headers.raw:
        if name.lower() == b"transfer-encoding" and value.lower() == b"chunked":
            chunked = True
        lines.append(name + b": " + value)
    if proxy is not None and proxy.authorization:
        lines.append(b"Proxy-Authorization: " + proxy.authorization)
    return b"\r\n".join(lines) + b"\r\n\r\n", chunked


async def _send(conn: _Connection, head: bytes, body: Any, chunked: bool) -> None:
    transport = conn.transport
    if transport is None or conn.closed:
        raise httpx.RemoteProtocolError("Server disconnected")
    if isinstance(body, httpx.ByteStream):  # the usual case: the whole body is in memory
        content = b"".join([part async for part in body])
        if chunked:
            content = (b"%x\r\n%b\r\n" % (len(content), content) if content else b"") + b"0\r\n\r\n"
        transport.write(head + content)
        return
    transport.write(head)
    async for part in body:
        if part:
            transport.write(b"%x\r\n%b\r\n" % (len(part), part) if chunked else part)
    if chunked:
        transport.write(b"0\r\n\r\n")


def _with_request(error: Exception, request: httpx.Request) -> Exception:
    if isinstance(error, httpx.RequestError):
        error.request = request
    return error


class LeanClient(httpx.AsyncClient):
    """An httpx client for provider calls that skips what the relay never needs per call: the
    cookie jar (one user's upstream cookies must not ride along on another user's call), auth
    flows and redirect bookkeeping. Asking for redirects or auth falls back to httpx's path."""

    def __init__(self, transport: httpx.AsyncBaseTransport, **kwargs: Any):
        super().__init__(transport=transport, **kwargs)
        self._lean_transport = transport

    async def send(  # type: ignore[override]
        self,
        request: httpx.Request,
        *,
        stream: bool = False,
        auth: Any = httpx.USE_CLIENT_DEFAULT,
        follow_redirects: Any = httpx.USE_CLIENT_DEFAULT,
    ) -> httpx.Response:
        if follow_redirects is True or auth not in (httpx.USE_CLIENT_DEFAULT, None):
            return await super().send(request, stream=stream, auth=auth, follow_redirects=follow_redirects)
        response = await self._lean_transport.handle_async_request(request)
        if not stream:
            try:
                await response.aread()
            except BaseException:
                await response.aclose()
                raise
        return response
