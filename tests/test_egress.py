"""Provider calls through an egress proxy (HTTPS_PROXY / HTTP_PROXY / NO_PROXY): CONNECT for https
with the relay's own TLS inside the tunnel, absolute-form for http, credentials, refusals, and
NO_PROXY — against a real forward proxy on a port (testkit/egress_proxy.py) and fake providers
that only the proxy can reach."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from relay.auth.tokens import issue_token
from relay.providers.egress import EgressError, parse_egress
from relay.providers.http1 import Http1Transport, LeanClient
from relay.settings import SettingsError, load_settings
from testkit.egress_proxy import EgressProxy
from testkit.fakes.server import serve_asgi
from testkit.fakes.upstream import DEFAULT_KEYS, create_fake_upstream
from testkit.relay_process import clean_env, serve_relay
from testkit.tls import CertFiles, make_certificates
from tests.conftest import SECRET, provider_part

CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hello there"}]}
PROVIDER = "api.openai.test"  # resolves nowhere: only the proxy knows where it is


# -- NO_PROXY and the proxy URL, as data ------------------------------------------------------
@pytest.mark.parametrize(
    ("no_proxy", "host", "port", "direct"),
    [
        ("", "api.openai.com", 443, False),
        ("", "localhost", 443, True),  # loopback is never proxied
        ("", "127.0.0.5", 443, True),
        ("", "::1", 443, True),
        ("openai.com", "api.openai.com", 443, True),  # a domain covers its subdomains
        ("openai.com", "openai.com", 443, True),
        ("openai.com", "notopenai.com", 443, False),  # ... but not other names ending the same
        (".openai.com", "api.openai.com", 443, True),
        ("*.openai.com", "api.openai.com", 443, True),
        ("API.OpenAI.com", "api.openai.com", 443, True),  # case-insensitive
        ("10.0.0.0/8", "10.1.2.3", 443, True),
        ("10.0.0.0/8", "11.1.2.3", 443, False),
        ("10.1.2.3", "10.1.2.3", 443, True),
        ("api.openai.com:8443", "api.openai.com", 443, False),  # a port narrows the rule
        ("api.openai.com:8443", "api.openai.com", 8443, True),
        ("[2001:db8::1]:443", "2001:db8::1", 443, True),
        ("2001:db8::/32", "2001:db8::7", 443, True),
        ("a.example, b.example  c.example", "c.example", 443, True),
        ("*", "api.openai.com", 443, True),
    ],
)
def test_no_proxy_rules(no_proxy: str, host: str, port: int, direct: bool) -> None:
    """NO_PROXY reads as curl and Go read it: names cover subdomains, CIDR networks, ports, `*`."""
    egress = parse_egress("http://proxy.corp:3128", "", no_proxy)
    assert egress is not None
    assert (egress.proxy_for("https", host, port) is None) is direct


def test_proxy_urls_and_their_errors() -> None:
    """Credentials become Proxy-Authorization (hidden from repr), a bare host:port is http, and
    schemes the relay does not speak are refused at start with the variable's name."""
    egress = parse_egress("http://ann:s%40cret@proxy.corp:3128", "proxy.corp", "")
    assert egress is not None and egress.https is not None and egress.http is not None
    assert (egress.https.host, egress.https.port) == ("proxy.corp", 3128)
    assert egress.https.authorization == b"Basic YW5uOnNAY3JldA=="  # ann:s@cret
    assert "cret" not in repr(egress) and str(egress.https) == "proxy.corp:3128"
    assert egress.http.port == 80
    assert egress.proxy_for("http", "api.x", 80) is egress.http
    assert parse_egress("", "", "example.com") is None
    with pytest.raises(EgressError, match="HTTPS_PROXY: only http://"):
        parse_egress("socks5://proxy:1080", "", "")
    with pytest.raises(EgressError, match="NO_PROXY"):
        parse_egress("http://proxy:1", "", "example.com:http")


def test_settings_read_the_proxy_variables(tmp_path: Path) -> None:
    """Lower-case names win over upper-case ones (as in curl and urllib); a bad one stops start-up."""
    env = {"AIPIPE_SECRET": "x" * 40, "HTTPS_PROXY": "http://upper:1", "https_proxy": "http://lower:2",
           "NO_PROXY": "internal.example"}
    egress = load_settings(env, cwd=tmp_path).egress
    assert egress is not None and egress.https is not None
    assert egress.https.host == "lower"
    assert egress.proxy_for("https", "api.internal.example", 443) is None
    assert load_settings({"AIPIPE_SECRET": "x" * 40}, cwd=tmp_path).egress is None
    with pytest.raises(SettingsError, match="HTTPS_PROXY"):
        load_settings({"AIPIPE_SECRET": "x" * 40, "HTTPS_PROXY": "https://p:1"}, cwd=tmp_path)


# -- the upstream client through a real proxy --------------------------------------------------
@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> CertFiles:
    return make_certificates(tmp_path_factory.mktemp("tls"), [PROVIDER])


@pytest.fixture(scope="module")
def https_upstream(certs: CertFiles) -> Iterator[str]:
    """The fake providers over TLS, with a certificate for api.openai.test."""
    with serve_asgi(create_fake_upstream(), ssl_certfile=str(certs.cert), ssl_keyfile=str(certs.key)) as url:
        yield url


@pytest.fixture(scope="module")
def http_upstream() -> Iterator[str]:
    with serve_asgi(create_fake_upstream()) as url:
        yield url


def _address(url: str) -> tuple[str, int]:
    parsed = httpx.URL(url)
    assert parsed.host and parsed.port
    return parsed.host, parsed.port


def _client(proxy_url: str, certs: CertFiles, no_proxy: str = "") -> LeanClient:
    context = ssl.create_default_context(cafile=str(certs.ca))
    context.set_alpn_protocols(["http/1.1"])
    egress = parse_egress(proxy_url, proxy_url, no_proxy)
    return LeanClient(Http1Transport(ssl_context=context, egress=egress), timeout=10)


async def _chat(client: LeanClient, url: str, stream: bool = False) -> tuple[int, bytes]:
    request = client.build_request(
        "POST", url, json={**CHAT, "stream": stream},
        headers={"authorization": f"Bearer {DEFAULT_KEYS['openai']}"},
    )
    resp = await client.send(request, stream=True)
    body = await resp.aread()
    await resp.aclose()
    return resp.status_code, body


def test_https_goes_through_connect_with_tls_to_the_provider(https_upstream: str, certs: CertFiles) -> None:
    """An https provider is reached by CONNECT; the certificate checked is the provider's (the
    proxy sees only the host name), and a second call reuses the tunnel."""
    proxy = EgressProxy(hosts={f"{PROVIDER}:443": _address(https_upstream)})

    async def run() -> list[tuple[int, bytes]]:
        client = _client(url, certs)
        try:
            url_ = f"https://{PROVIDER}/openai/v1/chat/completions"
            return [await _chat(client, url_), await _chat(client, url_, stream=True)]
        finally:
            await client.aclose()

    with proxy.running() as url:
        (status, body), (stream_status, streamed) = asyncio.run(run())
    assert status == 200 and b'"usage"' in body
    assert stream_status == 200 and b"data: [DONE]" in streamed
    assert proxy.seen == [f"CONNECT {PROVIDER}:443"]  # one tunnel, kept alive for the second call


def test_http_goes_in_absolute_form(http_upstream: str, certs: CertFiles) -> None:
    """An http provider is asked through HTTP_PROXY with the full URL in the request line."""
    proxy = EgressProxy(hosts={"plain.provider.test:80": _address(http_upstream)})

    async def run() -> tuple[int, bytes]:
        client = _client(url, certs)
        try:
            return await _chat(client, "http://plain.provider.test/openai/v1/chat/completions")
        finally:
            await client.aclose()

    with proxy.running() as url:
        status, body = asyncio.run(run())
    assert status == 200 and b'"usage"' in body
    assert proxy.seen == ["POST http://plain.provider.test/openai/v1/chat/completions"]


def test_proxy_credentials_and_refusals(https_upstream: str, certs: CertFiles) -> None:
    """Credentials in the proxy URL are sent as Proxy-Authorization; a proxy that refuses
    (407) is an httpx.ProxyError that names the proxy, never its password."""
    proxy = EgressProxy(hosts={f"{PROVIDER}:443": _address(https_upstream)}, credentials=("ann", "pw"))
    target = f"https://{PROVIDER}/openai/v1/chat/completions"

    async def run(proxy_url: str) -> tuple[int, bytes]:
        client = _client(proxy_url, certs)
        try:
            return await _chat(client, target)
        finally:
            await client.aclose()

    with proxy.running() as url:
        assert asyncio.run(run(url.replace("http://", "http://ann:pw@")))[0] == 200
        with pytest.raises(httpx.ProxyError, match="407") as refused:
            asyncio.run(run(url.replace("http://", "http://ann:wrong@")))
    assert "wrong" not in str(refused.value)
    assert proxy.seen == [f"CONNECT {PROVIDER}:443", f"407 CONNECT {PROVIDER}:443"]


def test_no_proxy_hosts_are_reached_directly(http_upstream: str, certs: CertFiles) -> None:
    """A NO_PROXY host is called directly: the proxy sees nothing."""
    proxy = EgressProxy()
    port = _address(http_upstream)[1]

    async def run() -> tuple[int, bytes]:
        # "localhost" is direct by the loopback rule; name it in NO_PROXY too, as operators do.
        client = _client(url, certs, no_proxy="localhost")
        try:
            return await _chat(client, f"http://localhost:{port}/openai/v1/chat/completions")
        finally:
            await client.aclose()

    with proxy.running() as url:
        assert asyncio.run(run())[0] == 200
    assert proxy.seen == []


# -- the whole relay ---------------------------------------------------------------------------
def test_relay_streams_through_the_egress_proxy(
    tmp_path: Path, https_upstream: str, certs: CertFiles
) -> None:
    """`aipipe serve` with HTTPS_PROXY set: a streamed call to a provider the relay cannot reach
    itself arrives through the CONNECT proxy, priced and recorded; a proxy that is down is a 502
    in the relay's envelope, and the call is not charged."""
    proxy = EgressProxy(hosts={f"{PROVIDER}:443": _address(https_upstream)})
    with proxy.running() as proxy_url:
        env = clean_env(
            AIPIPE_SECRET=SECRET,
            AIPIPE_DATA_DIR=str(tmp_path / "data"),
            OPENAI_API_KEY=DEFAULT_KEYS["openai"],
            AIPIPE_OPENAI_BASE=f"https://{PROVIDER}/openai",
            HTTPS_PROXY=proxy_url,
            SSL_CERT_FILE=str(certs.ca),  # the relay trusts the test CA (read by httpx's ssl context)
        )
        (tmp_path / "aipipe.toml").write_text('[budget]\n"*" = { limit = 1.0, days = 7 }\n')
        env["AIPIPE_CONFIG"] = str(tmp_path / "aipipe.toml")
        token = issue_token(load_settings(env, cwd=tmp_path), "ann@example.com")
        with serve_relay(tmp_path, env) as relay:
            r = httpx.post(
                f"{relay}/openai/v1/chat/completions", json={**CHAT, "stream": True},
                headers={"authorization": f"Bearer {token}"}, timeout=30,
            )
            assert r.status_code == 200, r.text
            assert provider_part(r.text).endswith("data: [DONE]")
            assert proxy.seen == [f"CONNECT {PROVIDER}:443"]
            usage = httpx.get(f"{relay}/usage", headers={"authorization": f"Bearer {token}"}).json()
            assert usage["cost"] > 0
    # The proxy is gone: no route to the provider at all.
    with serve_relay(tmp_path, env) as relay:
        r = httpx.post(
            f"{relay}/openai/v1/chat/completions", json=CHAT,
            headers={"authorization": f"Bearer {token}"}, timeout=30,
        )
        assert r.status_code == 502 and r.json()["error"]["code"] == "upstream_unavailable"
        after = httpx.get(f"{relay}/usage", headers={"authorization": f"Bearer {token}"}).json()
        assert after["cost"] == usage["cost"]  # nothing reached the provider: nothing charged
