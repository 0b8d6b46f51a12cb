"""web/py/handoff.py under CPython: who receives a token without asking, and how it travels."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from urllib.parse import parse_qs, quote, urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

WEB_PY = Path(__file__).resolve().parents[1] / "web" / "py"
spec = importlib.util.spec_from_file_location("webpy_handoff", WEB_PY / "handoff.py")
assert spec and spec.loader
handoff = importlib.util.module_from_spec(spec)
spec.loader.exec_module(handoff)

OWN = "http://127.0.0.1:8787"
ALLOWED = ["https://app.example.com", "http://localhost:3000/"]


@pytest.mark.parametrize(("protocol", "origin", "decision"), [
    ("http:", "http://127.0.0.1:8787", "same"),
    ("https:", "https://app.example.com", "allowed"),
    ("https:", "https://APP.example.com:443", "allowed"),
    ("http:", "http://localhost:3000", "allowed"),
    ("http:", "http://localhost:3001", "ask"),
    ("https:", "https://app.example.com.evil.test", "ask"),
    ("http:", "http://app.example.com", "ask"),  # other scheme, other origin
    ("javascript:", "null", "invalid"),
    ("data:", "null", "invalid"),
    ("https:", "null", "invalid"),
    ("https:", "", "invalid"),
])
def test_decide(protocol: str, origin: str, decision: str) -> None:
    """Own origin and operator-allowed origins (normalised like browsers) go at once; any
    other web origin is asked about; non-web targets are never used."""
    assert handoff.decide(protocol, origin, OWN, ALLOWED) == decision


def test_normalize_origin_drops_default_ports_and_case() -> None:
    """Origins compare the way browsers report them."""
    assert handoff.normalize_origin("HTTPS://Example.COM:443/") == "https://example.com"
    assert handoff.normalize_origin("http://example.com:80") == "http://example.com"
    assert handoff.normalize_origin("http://example.com:8080") == "http://example.com:8080"


@given(st.text())
def test_quote_matches_encode_uri_component(text: str) -> None:
    """Percent-encoding keeps only unreserved characters, like encodeURIComponent."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return  # lone surrogates cannot be in a JS string we get from the page
    assert handoff.quote(text) == quote(text, safe="-._~")


@pytest.mark.parametrize(("href", "expected_prefix"), [
    ("https://app.example.com/p?q=1", "https://app.example.com/p?q=1#aipipe_token="),
    ("https://app.example.com/#/route", "https://app.example.com/#/route&aipipe_token="),
    ("https://app.example.com/#", "https://app.example.com/#aipipe_token="),
])
def test_handoff_url_puts_the_token_in_the_fragment(href: str, expected_prefix: str) -> None:
    """The token travels in the fragment (never sent to servers), after any existing one."""
    profile = {"token": "a.b+c/d=", "email": "a+b@example.com", "name": "Zoë & co"}
    url = handoff.handoff_url(href, profile)
    assert url.startswith(expected_prefix)
    assert urlsplit(url).query == urlsplit(href).query
    params = parse_qs(url.split("#", 1)[1])
    assert params["aipipe_token"] == ["a.b+c/d="]
    assert params["aipipe_email"] == ["a+b@example.com"]
    assert params["aipipe_name"] == ["Zoë & co"]


def test_approval_message_names_the_origin() -> None:
    """The question the user answers names the exact origin."""
    assert handoff.approval_message("https://x.example:443") == (
        "https://x.example wants to use your AI Pipe token")
