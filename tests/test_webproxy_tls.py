"""/proxy over HTTPS: it connects to the address it checked, yet speaks TLS to the host name —
SNI and certificate checks are for the name the user asked for, not the pinned IP.

A real TLS server on loopback stands in for a public site: the relay's resolver answers a
public address for its name, and the only stand-in is the socket layer under the relay's HTTP
client, which carries connections for that public address to the local server (no test leaves
127.0.0.1). The certificate names only the host, so a check against the IP would fail."""

from __future__ import annotations

import ssl
from pathlib import Path

import httpcore
import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from relay.app import create_app
from relay.auth.tokens import issue_token
from testkit.fakes.server import serve_asgi
from testkit.tls import make_certificates
from tests.conftest import auth, make_settings

HOST, PUBLIC = "files.example.org", "93.184.215.14"  # a public address (never reached)


async def _page(request: Request) -> PlainTextResponse:
    return PlainTextResponse(f"host={request.headers['host']} path={request.url.path}")


class _ToLoopback(httpcore.AsyncNetworkBackend):
    """TCP connections to PUBLIC:443 go to the local TLS server instead (TLS itself untouched)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.real = httpcore.AnyIOBackend()
        self.asked: list[tuple[str, int]] = []

    async def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
        self.asked.append((host, port))
        assert (host, port) == (PUBLIC, 443), "the relay connects only to the address it checked"
        return await self.real.connect_tcp("127.0.0.1", self.port, timeout, local_address, socket_options)

    async def connect_unix_socket(self, path, timeout=None, socket_options=None):
        raise OSError("no unix sockets here")

    async def sleep(self, seconds: float) -> None:
        await self.real.sleep(seconds)


def test_https_is_fetched_with_sni_and_the_certificate_checked_for_the_name(tmp_path: Path) -> None:
    """GET /proxy/https://files.example.org/… reaches the site's pinned address with TLS for
    `files.example.org`: the certificate (valid for that name only) verifies, the Host header is
    the name; a certificate for another name is refused (502), not fetched."""
    good = make_certificates(tmp_path / "good", [HOST])
    site = Starlette(routes=[Route("/{rest:path}", _page)])
    with serve_asgi(site, ssl_certfile=str(good.cert), ssl_keyfile=str(good.key)) as url:
        port = int(url.rsplit(":", 1)[1])
        backend = _ToLoopback(port)
        trust = ssl.create_default_context(cafile=str(good.ca))
        transport = httpx.AsyncHTTPTransport(verify=trust)
        transport._pool = httpcore.AsyncConnectionPool(ssl_context=trust, network_backend=backend)

        async def resolve(host: str, port: int) -> list[str]:
            return [PUBLIC] if host == HOST else []

        settings = make_settings(tmp_path)
        app = create_app(settings, transport=transport, resolver=resolve)
        with TestClient(app) as client:
            headers = auth(issue_token(settings, "student@example.com"))
            r = client.get(f"/proxy/https://{HOST}/docs/a.txt", headers=headers)
            assert r.status_code == 200, r.text
            assert r.text == f"host={HOST} path=/docs/a.txt"
            assert backend.asked == [(PUBLIC, 443)]

    wrong = make_certificates(tmp_path / "wrong", ["other.example.org"])
    with serve_asgi(site, ssl_certfile=str(wrong.cert), ssl_keyfile=str(wrong.key)) as url:
        backend.port = int(url.rsplit(":", 1)[1])
        trust = ssl.create_default_context(cafile=str(wrong.ca))
        transport = httpx.AsyncHTTPTransport(verify=trust)
        transport._pool = httpcore.AsyncConnectionPool(ssl_context=trust, network_backend=backend)
        app = create_app(settings, transport=transport, resolver=resolve)
        with TestClient(app) as client:
            r = client.get(f"/proxy/https://{HOST}/docs/a.txt", headers=headers)
            assert r.status_code == 502 and r.json()["error"]["type"] == "upstream_error"
