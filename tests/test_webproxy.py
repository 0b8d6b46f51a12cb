"""`/proxy/<url>`: a CORS helper that must never become an SSRF hole or an open relay.

The relay's HTTP client is given an in-process "internet" (an ASGI app) as its transport, and
host names are resolved by a stand-in handed to the app as its resolver, so no test leaves the
machine; the address checks run for real."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from relay.app import create_app
from relay.routes import webproxy
from relay.routes.webproxy import is_public, system_resolve
from tests.conftest import auth, make_settings

PUBLIC = "93.184.216.34"  # an address in public space (the fake internet answers it)
DNS = {"site.test": [PUBLIC], "intranet.test": ["10.1.2.3"], "mixed.test": [PUBLIC, "127.0.0.1"]}


def _internet() -> Starlette:
    """Every host on the fake internet serves these routes and logs what it received."""
    seen: list[dict[str, Any]] = []

    async def page(request: Request) -> Response:
        seen.append({"method": request.method, "headers": dict(request.headers),
                     "server": request.scope["server"], "path": request.scope["raw_path"],
                     "body": await request.body()})
        return JSONResponse({"ok": True}, headers={"set-cookie": "tracker=1", "x-internal": "1",
                                                   "cache-control": "max-age=60"})

    async def redirect(request: Request) -> Response:
        seen.append({"method": request.method, "path": request.scope["raw_path"]})
        to = request.query_params.get("to", "/redirect")  # with no target: a loop
        return RedirectResponse(to, status_code=int(
            request.query_params.get("status", 302)))

    async def big(request: Request) -> Response:
        return Response(b"x" * (webproxy.MAX_BYTES + 1), media_type="text/plain")

    async def drip(request: Request) -> Response:
        async def slowly():
            for _ in range(20):
                await asyncio.sleep(0.1)
                yield b"."

        return StreamingResponse(slowly(), media_type="text/plain")

    app = Starlette(routes=[
        Route("/redirect", redirect, methods=["GET", "POST"]),
        Route("/big", big),
        Route("/drip", drip),
        Route("/{rest:path}", page, methods=["GET", "POST", "HEAD"]),
    ])
    app.state.seen = seen
    return app


@pytest.fixture
def internet() -> Starlette:
    return _internet()


class FakeDNS:
    """The app's resolver: answers from DNS (literal addresses as themselves), or from
    `instead` when a test sets it."""

    def __init__(self) -> None:
        self.instead: Callable[[str, int], Awaitable[list[str]]] | None = None

    async def __call__(self, host: str, port: int) -> list[str]:
        if self.instead is not None:
            return await self.instead(host, port)
        if host in DNS:
            return DNS[host]
        import ipaddress

        try:
            return [str(ipaddress.ip_address(host.strip("[]")))]
        except ValueError:
            raise OSError(f"no such host {host}") from None


@pytest.fixture
def dns() -> FakeDNS:
    return FakeDNS()


@pytest.fixture
def proxy(tmp_path, internet, dns) -> Iterator[tuple[TestClient, dict[str, str]]]:
    settings = make_settings(tmp_path)
    app = create_app(settings, transport=httpx.ASGITransport(app=internet), resolver=dns)
    client = TestClient(app, raise_server_exceptions=False)
    client.__enter__()
    from relay.auth.tokens import issue_token

    yield client, auth(issue_token(settings, "student@example.com"))
    client.__exit__(None, None, None)


def get(proxy, url: str, **kw: Any) -> httpx.Response:
    client, headers = proxy
    return client.get("/proxy/" + url, headers={**headers, **kw.pop("headers", {})}, **kw)


def test_public_url_is_fetched_without_the_callers_credentials(proxy, internet) -> None:
    """A public URL is fetched with only harmless headers: never the caller's token or cookies;
    the answer keeps its content headers but not cookies, and is CORS-open."""
    client, headers = proxy
    r = client.get("/proxy/http://site.test/data.json?q=1",
                   headers={**headers, "Cookie": "s=1", "Accept": "application/json",
                            "X-Forwarded-For": "10.0.0.1"})
    assert r.status_code == 200 and r.json() == {"ok": True}
    [seen] = internet.state.seen
    assert seen["server"][0] == PUBLIC  # connected to the vetted address...
    assert seen["headers"]["host"] == "site.test"  # ...asking for the named host
    assert seen["path"] == b"/data.json"
    for private in ("authorization", "cookie", "x-forwarded-for"):
        assert private not in seen["headers"]
    assert seen["headers"]["accept"] == "application/json"
    assert "set-cookie" not in r.headers and "x-internal" not in r.headers
    assert r.headers["cache-control"] == "max-age=60"
    assert r.headers["access-control-allow-origin"] == "*"


def test_proxy_needs_an_aipipe_token(proxy, internet) -> None:
    """No token, or a provider key instead of an AI Pipe token: 401, nothing fetched."""
    client, _ = proxy
    assert client.get(f"/proxy/http://{PUBLIC}/").status_code == 401
    r = client.get(f"/proxy/http://{PUBLIC}/", headers=auth("sk-not-an-aipipe-token"))
    assert r.status_code == 401
    assert internet.state.seen == []


@pytest.mark.parametrize("target", [
    "http://127.0.0.1/", "http://127.1.2.3:8080/", "http://localhost/", "http://[::1]/",
    "http://[::ffff:127.0.0.1]/", "http://0.0.0.0/", "http://10.0.0.1/", "http://192.168.1.1/",
    "http://172.16.0.1/", "http://169.254.169.254/latest/meta-data/", "http://100.64.0.1/",
    "http://[fe80::1]/", "http://[fc00::1]/", "http://224.0.0.1/", "http://intranet.test/",
    "http://mixed.test/", "https://2130706433/", "http://0x7f.1/",
])
def test_private_targets_are_refused(proxy, internet, dns, target) -> None:
    """Loopback, private, link-local, cloud metadata, CGNAT, multicast and names that resolve to
    any of them (even one of several addresses) are refused with 403 before any connection."""
    if target in ("https://2130706433/", "http://0x7f.1/", "http://localhost/"):
        dns.instead = _numeric_resolve  # numeric forms and localhost: the system's resolver
    r = get(proxy, target)
    assert r.status_code == 403, r.text
    assert r.json()["error"]["code"] == "forbidden_target"
    assert internet.state.seen == []


async def _numeric_resolve(host: str, port: int) -> list[str]:
    """The relay's own resolver, for names that need no DNS server (numbers, localhost)."""
    return await system_resolve(host, port)


def test_redirect_to_a_private_address_is_refused(proxy, internet) -> None:
    """A public page that redirects to a private address is caught at the redirect."""
    r = get(proxy, "http://site.test/redirect?to=http://169.254.169.254/latest/")
    assert r.status_code == 403
    assert [s["path"] for s in internet.state.seen] == [b"/redirect"]


def test_redirects_are_followed_and_bounded(proxy, internet) -> None:
    """Public redirects are followed (a 303 turns into a GET); more than five is a 502."""
    r = get(proxy, "http://site.test/redirect?to=/final")
    assert r.status_code == 200
    assert internet.state.seen[-1]["path"] == b"/final"
    client, headers = proxy
    r = client.post("/proxy/http://site.test/redirect?status=303&to=/after", content=b"x=1",
                    headers=headers)
    assert r.status_code == 200 and internet.state.seen[-1]["method"] == "GET"
    r = get(proxy, "http://site.test/redirect")
    assert r.status_code == 502 and "redirects" in r.json()["message"]


@pytest.mark.parametrize("target", [
    "ftp://site.test/", "file:///etc/passwd", "site.test/page", "http:///nohost", "http://[::1/",
    "http://site.test:99999/", "http://site.test:port/", "http://user:pw@site.test/",
    "http://" + "a" * 70 + ".test/", "gopher://site.test/",
])
def test_malformed_or_unsupported_urls_are_a_400(proxy, internet, target) -> None:
    """Other schemes, missing hosts, bad ports, credentials and invalid names: 400, never 500."""
    r = get(proxy, target)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["type"] == "invalid_request_error"
    assert internet.state.seen == []


def test_responses_and_bodies_are_bounded(proxy) -> None:
    """A response over the size limit is a 413, and so is a request body over it."""
    assert get(proxy, "http://site.test/big").status_code == 413
    client, headers = proxy
    r = client.post("/proxy/http://site.test/up", content=b"x" * (webproxy.MAX_BYTES + 1),
                    headers=headers)
    assert r.status_code == 413


def test_a_slow_drip_is_cut_at_the_total_deadline(proxy, monkeypatch) -> None:
    """Per-read timeouts are not enough: a server that drips bytes is cut at the whole-fetch
    deadline with a 504."""
    monkeypatch.setattr(webproxy, "TOTAL_TIMEOUT", 0.5)
    r = get(proxy, "http://site.test/drip")
    assert r.status_code == 504 and r.json()["error"]["code"] == "upstream_timeout"


def test_encoded_characters_in_the_target_path_are_kept(proxy, internet) -> None:
    """An encoded '?' or '/' in the target's path stays encoded; non-ASCII header values are
    forwarded byte for byte rather than crashing the relay."""
    client, headers = proxy
    r = client.get("/proxy/http://site.test/a%3Fb/c%2Fd",
                   headers={**headers, "user-agent": "café".encode()})
    assert r.status_code == 200, r.text
    assert internet.state.seen[-1]["path"] == b"/a%3Fb/c%2Fd"
    # Starlette reads header bytes as latin-1; the same bytes arrive at the target.
    assert internet.state.seen[-1]["headers"]["user-agent"].encode("latin-1") == "café".encode()


def test_dns_answer_is_pinned_across_the_request(proxy, internet, dns) -> None:
    """The address that was checked is the one connected to: a resolver that answers a public
    address first and a private one later (DNS rebinding) cannot steer the connection."""
    answers = iter([[PUBLIC], ["127.0.0.1"]])

    async def rebinding(host: str, port: int) -> list[str]:
        return next(answers)

    dns.instead = rebinding
    r = get(proxy, "http://rebind.test/redirect?to=http://rebind.test/inside")
    assert r.status_code == 403  # the second hop resolved privately: refused
    assert [s.get("server", (PUBLIC,))[0] for s in internet.state.seen] == [PUBLIC]


@pytest.mark.parametrize("address,public", [
    ("8.8.8.8", True), ("2606:4700::1111", True), ("127.0.0.1", False), ("::1", False),
    ("::ffff:10.0.0.1", False), ("169.254.1.1", False), ("100.64.0.1", False),
    ("192.0.2.1", False), ("255.255.255.255", False), ("ff02::1", False),
    # IPv6 forms that wrap an IPv4 address reach that address: judged by it.
    ("64:ff9b::7f00:1", False), ("64:ff9b::a00:1", False), ("64:ff9b::a9fe:a9fe", False),
    ("64:ff9b::808:808", True), ("64:ff9b:1::808:808", False),
    ("2002:7f00:1::", False), ("2002:a00:1::1", False), ("2002:a9fe:a9fe::", False),
    ("2002:808:808::1", True),
    ("::7f00:1", False), ("::a00:1", False), ("::808:808", False),
    ("fec0::1", False), ("fed0::1", False), ("2001:0:4136:e378:8000:63bf:3fff:fdd2", False),
])
def test_is_public(address: str, public: bool) -> None:
    """The address check itself, over the ranges that matter for SSRF — NAT64 (64:ff9b::/96),
    6to4 (2002::/16), IPv4-compatible (::/96), site-local (fec0::/10) and Teredo included."""
    assert is_public(address) is public


@pytest.mark.parametrize("address", [
    "64:ff9b::7f00:1", "2002:a9fe:a9fe::", "::a00:1", "fec0::1", "64:ff9b::a9fe:a9fe",
])
def test_names_resolving_to_wrapped_private_ipv4_are_refused(proxy, internet, dns, address) -> None:
    """A name that resolves to an IPv6 form of a private IPv4 address is refused (403) before
    any connection, as the IPv4 address itself would be."""
    async def wrapped(host: str, port: int) -> list[str]:
        return [address]

    dns.instead = wrapped
    r = get(proxy, "http://innocent.test/latest/meta-data/")
    assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden_target"
    assert internet.state.seen == []
