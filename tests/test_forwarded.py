"""The client's address behind reverse proxies: X-Forwarded-For / Forwarded count only when the
peer that sent them is in AIPIPE_TRUSTED_PROXIES; the address feeds the access log and the
`--dev` loopback rule of /dev-login."""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from relay.app import create_app
from relay.forwarded import TrustedProxies, client_is_loopback
from relay.settings import SettingsError, load_settings
from testkit.relay_process import clean_env, serve_relay
from tests.conftest import SECRET, make_settings
from tests.test_logs import Lines, logs  # noqa: F401  (the fixture)

NGINX = "127.0.0.1"


def _scope(peer: str, *headers: tuple[str, str]) -> dict:
    return {
        "type": "http",
        "client": (peer, 5000),
        "scheme": "http",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers],
    }


def _trusting(*networks: str) -> TrustedProxies:
    return TrustedProxies(ipaddress.ip_network(n) for n in networks)


@pytest.mark.parametrize(
    ("peer", "headers", "client"),
    [
        # Untrusted peer: its headers say nothing.
        ("203.0.113.9", [("x-forwarded-for", "127.0.0.1")], "203.0.113.9"),
        ("203.0.113.9", [("forwarded", "for=127.0.0.1")], "203.0.113.9"),
        # Trusted nginx: the address it appended is the client.
        (NGINX, [("x-forwarded-for", "198.51.100.7")], "198.51.100.7"),
        # A client that forges a chain: only the hop nginx added counts.
        (NGINX, [("x-forwarded-for", "127.0.0.1, 198.51.100.7")], "198.51.100.7"),
        # Two proxies of ours (a load balancer in 10.0.0.0/8, then nginx): skip both.
        (NGINX, [("x-forwarded-for", "198.51.100.7, 10.0.0.5")], "198.51.100.7"),
        # Several headers are one list, in order.
        (NGINX, [("x-forwarded-for", "198.51.100.7"), ("x-forwarded-for", "10.0.0.5")], "198.51.100.7"),
        # Forwarded (RFC 7239), quoted IPv6 with port; it wins over X-Forwarded-For.
        (NGINX, [("forwarded", 'for="[2001:db8::7]:4711";proto=https'), ("x-forwarded-for", "9.9.9.9")],
         "2001:db8::7"),
        (NGINX, [("forwarded", "for=192.0.2.60:1234, for=10.0.0.5")], "192.0.2.60"),
        # Every hop is ours: the first is the client.
        (NGINX, [("x-forwarded-for", "10.0.0.9, 10.0.0.5")], "10.0.0.9"),
        # An obfuscated identifier is kept, bounded, and is no address.
        (NGINX, [("forwarded", "for=_hidden")], "_hidden"),
        # No headers: the peer.
        (NGINX, [], NGINX),
    ],
)
def test_chain_is_read_from_the_trusted_side(peer: str, headers: list, client: str) -> None:
    """From the nearest hop outwards, trusted proxies are skipped; the first other hop is the client."""
    scope = _scope(peer, *headers)
    _trusting("127.0.0.1/32", "10.0.0.0/8").apply(scope)
    assert scope["client"][0] == client


def test_scheme_from_a_trusted_proxy_only() -> None:
    """X-Forwarded-Proto / Forwarded proto= set the scheme only from a trusted peer."""
    trusted = _trusting("127.0.0.1/32")
    scope = _scope(NGINX, ("x-forwarded-for", "198.51.100.7"), ("x-forwarded-proto", "https"))
    trusted.apply(scope)
    assert scope["scheme"] == "https"
    scope = _scope("203.0.113.9", ("x-forwarded-for", "198.51.100.7"), ("x-forwarded-proto", "https"))
    trusted.apply(scope)
    assert scope["scheme"] == "http"


def test_loopback_rule_fails_closed_behind_an_untrusted_proxy() -> None:
    """A request from loopback that names another origin in forwarding headers came through a
    proxy (nginx on the same host) the relay was not told to trust: not loopback."""
    assert client_is_loopback(_scope("127.0.0.1"))
    assert client_is_loopback(_scope("127.0.0.1", ("x-forwarded-for", "127.0.0.1")))  # says nothing new
    assert not client_is_loopback(_scope("127.0.0.1", ("x-forwarded-for", "198.51.100.7")))
    assert not client_is_loopback(_scope("203.0.113.9", ("x-forwarded-for", "127.0.0.1")))
    trusted = _trusting("127.0.0.1/32")
    scope = _scope(NGINX, ("x-forwarded-for", "127.0.0.1"))  # a browser on the host, via nginx
    trusted.apply(scope)
    assert client_is_loopback(scope)
    scope = _scope(NGINX, ("x-forwarded-for", "198.51.100.7"))
    trusted.apply(scope)
    assert not client_is_loopback(scope)


def test_trusted_proxies_setting(tmp_path: Path) -> None:
    """Addresses and networks, commas or spaces; anything else stops start-up, naming the variable."""
    s = load_settings(
        {"AIPIPE_SECRET": "x" * 40, "AIPIPE_TRUSTED_PROXIES": "127.0.0.1, 10.0.0.0/8 ::1"}, cwd=tmp_path
    )
    assert [str(n) for n in s.trusted_proxies] == ["127.0.0.1/32", "10.0.0.0/8", "::1/128"]
    assert load_settings({"AIPIPE_SECRET": "x" * 40}, cwd=tmp_path).trusted_proxies == ()
    with pytest.raises(SettingsError, match="AIPIPE_TRUSTED_PROXIES"):
        load_settings({"AIPIPE_SECRET": "x" * 40, "AIPIPE_TRUSTED_PROXIES": "nginx.local"}, cwd=tmp_path)


@pytest.fixture
def served(upstream: Starlette, tmp_path: Path) -> Callable[..., int]:
    """POST /dev-login to a --dev relay from `peer` with `headers`; answers the status."""
    count = 0

    def call(peer: str, headers: dict[str, str], **overrides: object) -> int:
        nonlocal count
        count += 1
        settings = make_settings(tmp_path / str(count), dev=True, **overrides)
        app = create_app(settings, transport=httpx.ASGITransport(app=upstream))
        with TestClient(app, base_url="http://127.0.0.1", client=(peer, 5000)) as client:
            return client.post("/dev-login", json={"email": "me@example.com"}, headers=headers).status_code

    return call


def test_dev_login_reads_the_trusted_address(served: Callable[..., int]) -> None:
    """`--dev` sign-in is for loopback clients: a forged X-Forwarded-For: 127.0.0.1 from elsewhere
    does not open it, nor does a remote client reaching it through nginx on the host."""
    nginx = (ipaddress.ip_network("127.0.0.1/32"),)
    assert served("127.0.0.1", {}) == 200
    assert served("203.0.113.9", {"x-forwarded-for": "127.0.0.1"}) == 404
    # nginx on loopback, not declared: the real client is unknown, so no.
    assert served(NGINX, {"x-forwarded-for": "198.51.100.7"}) == 404
    # nginx declared: its word is taken, both ways.
    assert served(NGINX, {"x-forwarded-for": "198.51.100.7"}, trusted_proxies=nginx) == 404
    assert served(NGINX, {"x-forwarded-for": "127.0.0.1"}, trusted_proxies=nginx) == 200


def _logged_client(upstream: Starlette, tmp_path: Path, peer: str, **overrides: object) -> None:
    app = create_app(make_settings(tmp_path, **overrides), transport=httpx.ASGITransport(app=upstream))
    with TestClient(app, client=(peer, 5000)) as client:
        client.get("/usage", headers={"x-forwarded-for": "198.51.100.7"})


def test_access_log_shows_the_client(upstream: Starlette, tmp_path: Path, logs: Lines) -> None:  # noqa: F811
    """The access log's `client` is the peer unless a trusted proxy vouches for another address."""
    _logged_client(upstream, tmp_path / "a", "203.0.113.9")
    _logged_client(upstream, tmp_path / "b", NGINX, trusted_proxies=(ipaddress.ip_network(NGINX),))
    assert [line["client"] for line in logs.requests()] == ["203.0.113.9", "198.51.100.7"]


def test_served_relay_ignores_forged_forwarding(tmp_path: Path) -> None:
    """`aipipe serve` with no trusted proxies: a client on 127.0.0.1 sending X-Forwarded-For is
    logged as 127.0.0.1 (uvicorn's own reading, which trusts 127.0.0.1, is off)."""
    env = clean_env(AIPIPE_SECRET=SECRET, AIPIPE_DATA_DIR=str(tmp_path / "data"))
    with serve_relay(tmp_path, env) as url:
        r = httpx.get(f"{url}/usage", headers={"x-forwarded-for": "198.51.100.7"})
        assert r.status_code == 401
    lines = [json.loads(x) for x in (tmp_path / "relay.log").read_text().splitlines() if x.startswith("{")]
    [line] = [x for x in lines if x.get("path") == "/usage"]
    assert line["client"] == "127.0.0.1"
