"""The --dev sign-in mints any token (admin included) for a loopback client, so it must not answer
what a web page could make the developer's browser send: a form post (no CORS preflight), a
DNS-rebinding page (its own Host), another site's Origin — and it grants no CORS to anyone.

Through a real server on 127.0.0.1 and a real loopback client: the relay has no test-only
notion of who is local."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from relay.app import create_app
from relay.auth.tokens import TokenVerifier
from testkit.fakes.server import serve_asgi
from tests.conftest import make_settings


@pytest.fixture
def dev(tmp_path: Path) -> Iterator[tuple[str, object]]:
    settings = make_settings(tmp_path, dev=True)
    with serve_asgi(create_app(settings)) as url:
        yield url, settings


def test_dev_sign_in_gives_a_token_to_a_loopback_json_post(dev) -> None:
    """JSON from a loopback client at a loopback Host (the login page's own request): a token
    for that email, with no CORS grant in the answer; a bad email is a 400."""
    url, settings = dev
    r = httpx.post(f"{url}/dev-login", json={"email": "Dev@Example.com"},
                   headers={"origin": url})
    assert r.status_code == 200, r.text
    assert r.json()["email"] == "dev@example.com"
    assert TokenVerifier(settings).caller(r.json()["token"]).email == "dev@example.com"
    assert not [h for h in r.headers if h.startswith("access-control-")]
    for host in ("localhost:8787", "127.0.0.1", "[::1]:9", "app.localhost"):
        assert httpx.post(f"{url}/dev-login", json={"email": "a@b.co"},
                          headers={"host": host}).status_code == 200
    assert httpx.post(f"{url}/dev-login", json={"email": "nope"}).status_code == 400


def test_dev_sign_in_is_absent_without_dev(tmp_path: Path) -> None:
    """Without --dev there is no dev sign-in, even for a loopback client."""
    with serve_asgi(create_app(make_settings(tmp_path))) as url:
        assert httpx.post(f"{url}/dev-login", json={"email": "a@b.co"}).status_code == 404


@pytest.mark.parametrize("content_type,body", [
    ("application/x-www-form-urlencoded", b"email=admin%40example.com"),
    ("text/plain", b'{"email": "admin@example.com"}'),
    ("multipart/form-data; boundary=x",
     b'--x\r\nContent-Disposition: form-data; name="email"\r\n\r\nadmin@example.com\r\n--x--\r\n'),
])
def test_a_cross_site_form_cannot_sign_in(dev, content_type, body) -> None:
    """The bodies an HTML form (or a no-cors fetch) can send without a preflight are refused."""
    url, _ = dev
    r = httpx.post(f"{url}/dev-login", content=body, headers={"content-type": content_type})
    assert r.status_code == 400 and r.json()["error"]["code"] == "unsupported_media_type"
    assert "token" not in r.text


def test_dns_rebinding_is_refused(dev) -> None:
    """A page on attacker.example that rebinds its name to 127.0.0.1 reaches the relay with its
    own Host: refused."""
    url, _ = dev
    for host in ("attacker.example", "attacker.example:8787", "127.0.0.1.nip.io", "localhost.evil"):
        r = httpx.post(f"{url}/dev-login", json={"email": "admin@example.com"},
                       headers={"host": host})
        assert r.status_code == 403, host
        assert r.json()["error"]["code"] == "not_loopback_host"


def test_another_sites_origin_is_refused(dev) -> None:
    """A request carrying another site's Origin (or the opaque "null") is refused."""
    url, _ = dev
    for origin in ("https://attacker.example", "null", "http://127.0.0.1.attacker.example"):
        r = httpx.post(f"{url}/dev-login", json={"email": "admin@example.com"},
                       headers={"origin": origin})
        assert r.status_code == 403 and r.json()["error"]["code"] == "cross_site", origin


def test_no_cors_grant_on_dev_login(dev) -> None:
    """The preflight a cross-site JSON post needs grants nothing, so the browser never sends
    it; other paths keep their open CORS."""
    url, _ = dev
    ask = {"origin": "https://attacker.example", "access-control-request-method": "POST",
           "access-control-request-headers": "content-type"}
    r = httpx.options(f"{url}/dev-login", headers=ask)
    assert not [h for h in r.headers if h.startswith("access-control-")]
    r = httpx.options(f"{url}/token", headers=ask)
    assert r.headers["access-control-allow-origin"] == "*"
