"""The lean HTTP/1.1 upstream transport, against a raw asyncio server on 127.0.0.1."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest

from relay.providers.http1 import Http1Transport, LeanClient

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter, bytes, bytes], Awaitable[bool]]


class RawServer:
    """Answers each request with the handler for its path; counts connections and requests."""

    def __init__(self, handlers: dict[str, Handler]):
        self.handlers = handlers
        self.connections = 0
        self.requests: list[tuple[bytes, bytes]] = []  # (head, body)
        self.port = 0
        self.server: asyncio.Server | None = None

    async def __aenter__(self) -> RawServer:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode().split("\r\n")
                headers = {k.lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:] if ln)}
                if headers.get("transfer-encoding") == "chunked":
                    body = b""
                    while (size := int((await reader.readline()).strip(), 16)) > 0:
                        body += (await reader.readexactly(size + 2))[:-2]
                    await reader.readline()
                else:
                    body = await reader.readexactly(int(headers.get("content-length", "0")))
                self.requests.append((head, body))
                path = lines[0].split(" ")[1]
                keep = await self.handlers[path.split("?")[0]](reader, writer, head, body)
                await writer.drain()
                if not keep:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


async def ok(reader, writer, head, body) -> bool:
    writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 11\r\n\r\n")
    writer.write(b'{"ok":true}')
    return True


async def slow_stream(reader, writer, head, body) -> bool:
    writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n")
    for i in range(3):
        data = f"data: {i}\n\n".encode()
        writer.write(b"%x\r\n%b\r\n" % (len(data), data))
        await writer.drain()
        await asyncio.sleep(0.15)
    writer.write(b"0\r\n\r\n")
    return True


async def hang(reader, writer, head, body) -> bool:
    await asyncio.sleep(5)
    return False


async def broken(reader, writer, head, body) -> bool:
    writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\npartial")
    return False


async def until_close(reader, writer, head, body) -> bool:
    writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n\r\nall of it")
    return False


async def head_answer(reader, writer, head, body) -> bool:
    writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 1234\r\n\r\n")
    return True


async def cookie(reader, writer, head, body) -> bool:
    writer.write(b"HTTP/1.1 200 OK\r\nset-cookie: session=abc; Path=/\r\ncontent-length: 0\r\n\r\n")
    return True


async def close_after(reader, writer, head, body) -> bool:
    await ok(reader, writer, head, body)
    return False  # answers, then closes the kept-alive connection


HANDLERS: dict[str, Handler] = {
    "/ok": ok, "/stream": slow_stream, "/hang": hang, "/broken": broken, "/eof": until_close,
    "/head": head_answer, "/cookie": cookie, "/close": close_after,
}


def run(coro_fn: Callable[[RawServer, LeanClient], Awaitable[None]], **client: object) -> RawServer:
    async def main() -> RawServer:
        async with RawServer(HANDLERS) as server:
            async with LeanClient(Http1Transport(), timeout=client.get("timeout", 5.0)) as http:
                await coro_fn(server, http)
            return server

    return asyncio.run(main())


def test_keep_alive_reuses_one_connection() -> None:
    """Sequential calls share one pooled connection, and each answer is read correctly."""

    async def calls(server: RawServer, http: LeanClient) -> None:
        for _ in range(5):
            resp = await http.post(server.url("/ok"), content=b'{"a":1}')
            assert resp.status_code == 200 and resp.json() == {"ok": True}

    server = run(calls)
    assert server.connections == 1
    assert len(server.requests) == 5
    assert all(body == b'{"a":1}' for _, body in server.requests)


def test_stream_chunks_arrive_as_sent() -> None:
    """A streamed answer is handed over chunk by chunk as the server sends it, not at the end."""

    async def stream(server: RawServer, http: LeanClient) -> None:
        loop = asyncio.get_running_loop()
        started = loop.time()
        arrivals = []
        async with http.stream("POST", server.url("/stream"), content=b"{}") as resp:
            async for chunk in resp.aiter_raw():
                arrivals.append((loop.time() - started, chunk))
        assert b"".join(c for _, c in arrivals) == b"data: 0\n\ndata: 1\n\ndata: 2\n\n"
        assert arrivals[0][0] < 0.1 and arrivals[-1][0] > 0.25

    run(stream)


def test_read_timeout_raises_httpx_read_timeout() -> None:
    """A server that never answers trips the read timeout as httpx.ReadTimeout."""

    async def call(server: RawServer, http: LeanClient) -> None:
        with pytest.raises(httpx.ReadTimeout):
            await http.post(server.url("/hang"), content=b"{}", timeout=0.2)

    run(call)


def test_refused_connection_raises_connect_error() -> None:
    """Nothing listening: httpx.ConnectError, which the proxy turns into a 502."""

    async def main() -> None:
        async with RawServer(HANDLERS) as server:
            port = server.port
        async with LeanClient(Http1Transport()) as http:
            with pytest.raises(httpx.ConnectError):
                await http.get(f"http://127.0.0.1:{port}/ok")

    asyncio.run(main())


def test_body_cut_short_raises_protocol_error() -> None:
    """A body shorter than its content-length ends in httpx.RemoteProtocolError, after the bytes
    that did come were handed over."""

    async def call(server: RawServer, http: LeanClient) -> None:
        got = b""
        with pytest.raises(httpx.RemoteProtocolError):
            async with http.stream("GET", server.url("/broken")) as resp:
                async for chunk in resp.aiter_raw():
                    got += chunk
        assert got == b"partial"

    run(call)


def test_body_delimited_by_close_is_read_whole() -> None:
    """No content-length and not chunked: the body is everything until the server closes."""

    async def call(server: RawServer, http: LeanClient) -> None:
        resp = await http.get(server.url("/eof"))
        assert resp.content == b"all of it"
        resp = await http.get(server.url("/ok"))  # and the next call opens a fresh connection
        assert resp.status_code == 200

    assert run(call).connections == 2


def test_connection_closed_by_server_is_not_reused() -> None:
    """A pooled connection the server has closed is dropped; the next call still succeeds."""

    async def calls(server: RawServer, http: LeanClient) -> None:
        assert (await http.get(server.url("/close"))).status_code == 200
        await asyncio.sleep(0.05)
        assert (await http.get(server.url("/ok"))).status_code == 200

    assert run(calls).connections == 2


def test_head_answer_has_no_body() -> None:
    """HEAD answers carry a content-length but no body: the call ends at once."""

    async def call(server: RawServer, http: LeanClient) -> None:
        resp = await asyncio.wait_for(http.head(server.url("/head")), 2)
        assert resp.status_code == 200 and resp.content == b""
        assert (await http.get(server.url("/ok"))).status_code == 200

    run(call)


def test_upstream_cookies_are_not_carried_to_the_next_call() -> None:
    """One user's upstream Set-Cookie never rides along on the next (another user's) call."""

    async def calls(server: RawServer, http: LeanClient) -> None:
        await http.get(server.url("/cookie"))
        await http.get(server.url("/ok"))

    server = run(calls)
    assert b"cookie:" not in server.requests[1][0].lower()


def test_streamed_request_body_is_sent_chunked() -> None:
    """A request body given as an async iterator goes out with chunked transfer encoding."""

    async def parts() -> AsyncIterator[bytes]:
        yield b'{"a":'
        yield b"1}"

    async def call(server: RawServer, http: LeanClient) -> None:
        resp = await http.post(server.url("/ok"), content=parts())
        assert resp.status_code == 200

    server = run(call)
    head, body = server.requests[0]
    assert b"transfer-encoding: chunked" in head.lower()
    assert body == b'{"a":1}'


def test_query_and_headers_go_out_as_given() -> None:
    """Path, query string and headers reach the server unchanged."""

    async def call(server: RawServer, http: LeanClient) -> None:
        await http.get(server.url("/ok"), params={"q": "a b"}, headers={"x-test": "yes"})

    head = run(call).requests[0][0].decode()
    assert head.startswith("GET /ok?q=a+b HTTP/1.1\r\n")
    assert "x-test: yes" in head.lower()


def _self_signed(tmp_path) -> tuple[str, str]:
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "provider.test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("provider.test")]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return str(cert_path), str(key_path)


def test_https_verifies_the_server_name_given_as_sni(tmp_path) -> None:
    """Over TLS the certificate is checked against the host name (or the `sni_hostname`
    extension when connecting to an address): the right name works, a wrong one is refused."""
    import ssl

    cert, key = _self_signed(tmp_path)
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert, key)
    client_ctx = ssl.create_default_context(cafile=cert)

    async def main() -> None:
        raw = RawServer(HANDLERS)
        server = await asyncio.start_server(raw._serve, "127.0.0.1", 0, ssl=server_ctx)
        port = server.sockets[0].getsockname()[1]
        try:
            async with LeanClient(Http1Transport(ssl_context=client_ctx), timeout=5) as http:
                for _ in range(2):
                    request = http.build_request(
                        "GET", f"https://127.0.0.1:{port}/ok", extensions={"sni_hostname": "provider.test"}
                    )
                    resp = await http.send(request)
                    assert resp.json() == {"ok": True}
                assert raw.connections == 1  # the TLS connection was kept alive and reused
                with pytest.raises(httpx.ConnectError):
                    await http.get(f"https://127.0.0.1:{port}/ok")  # name mismatch: refused
        finally:
            server.close()

    asyncio.run(main())
