"""Shared fixtures: a real relay app (real DuckDB file in tmp_path) in front of the fake providers.

The fakes listen on a real port (one uvicorn server for the session, serving each test's fresh
fake app), and the relay reaches them with its production upstream client (relay/providers/
http1.py), so what these tests exercise is what runs in production."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.testclient import TestClient

from relay.app import create_app
from relay.auth.tokens import issue_token
from relay.policy import parse_policy
from relay.providers.registry import BY_NAME
from relay.settings import Settings
from testkit.fakes.google import FakeGoogle
from testkit.fakes.server import serve_asgi
from testkit.fakes.upstream import DEFAULT_KEYS, create_fake_upstream
from tests.fake_port import FAKES

SECRET = "test-secret-0123456789abcdef0123456789abcdef"
ADMIN = "admin@example.com"
POLICY = {
    "budget": {
        "*": {"limit": 0.10, "days": 7},
        "@example.com": {"limit": 1.0, "days": 7},
        "rich@example.com": {"limit": 10.0, "days": 30},
        "blocked@example.com": {"limit": 0, "days": 1},
    },
    "salt": {"salted@example.com": "pepper-1"},
}




@pytest.fixture(scope="session", autouse=True)
def _fake_server() -> Iterator[None]:
    with serve_asgi(FAKES) as url:
        FAKES.url = url
        yield


@pytest.fixture(autouse=True)
def _no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings come from the tests, never from the developer's shell."""
    import os

    for name in list(os.environ):
        if (
            name.startswith("AIPIPE_")
            or name.endswith("_API_KEY")
            or name
            in (
                "ADMIN_EMAILS",
                "GOOGLE_CLIENT_ID",
            )
        ):
            monkeypatch.delenv(name)


@pytest.fixture
def fake_google() -> FakeGoogle:
    return FakeGoogle()


@pytest.fixture(autouse=True)
def upstream(fake_google: FakeGoogle) -> Starlette:
    """This test's fake providers, plus Google's cert endpoint, served on the session's port."""
    app = create_fake_upstream()
    app.router.routes.insert(0, Mount("/google", app=fake_google.certs_app()))
    FAKES.app = app
    return app


def make_settings(tmp_path: Path, base: str | None = None, **overrides: object) -> Settings:
    base = base or FAKES.url
    values: dict[str, object] = {
        "secret": SECRET,
        "data_dir": tmp_path / "data",
        "policy": parse_policy(POLICY),
        "admin_emails": frozenset({ADMIN}),
        "google_client_id": FakeGoogle().client_id,
        "google_certs_url": f"{base}/google/oauth2/v1/certs",
        "provider_keys": dict(DEFAULT_KEYS),
        "provider_bases": {p: f"{base}/{p}" for p in BY_NAME},
        "flush_seconds": 0.05,
        # DuckDB in process: a store worker per test would add ~0.4 s each. The worker is the
        # default of `aipipe serve`; tests/test_store_worker.py and every real-server test use it.
        "store_idle": 0,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path)


@pytest.fixture
def make_client(upstream: Starlette) -> Iterator[Callable[..., TestClient]]:
    """Build a TestClient for the relay with the given settings (lifespan on)."""
    opened: list[TestClient] = []

    def build(settings: Settings) -> TestClient:
        app = create_app(settings)  # the production upstream client, to the fakes' port
        client = TestClient(app, raise_server_exceptions=False)
        client.__enter__()
        opened.append(client)
        return client

    yield build
    for client in reversed(opened):
        client.__exit__(None, None, None)


@pytest.fixture
def client(make_client: Callable[..., TestClient], settings: Settings) -> TestClient:
    return make_client(settings)


@pytest.fixture
def token(settings: Settings) -> Callable[[str], str]:
    return lambda email="student@example.com": issue_token(settings, email)


def auth(tok: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {tok}"}


def with_settings(settings: Settings, **changes: object) -> Settings:
    return dataclasses.replace(settings, **changes)  # type: ignore[arg-type]


def provider_part(sse_text: str) -> str:
    """A relayed SSE stream without the relay's trailing `: aipipe {...}` cost comment."""
    return sse_text.split("\n: aipipe ")[0].rstrip()


@pytest.fixture(scope="session")
def pg_server_url() -> Iterator[str]:
    """A PostgreSQL server for the whole session: AIPIPE_TEST_DATABASE_URL if set (read before
    `_no_env` clears it), else a throwaway cluster (testkit.postgres)."""
    from testkit.postgres import postgres_server

    given = os.environ.get("AIPIPE_TEST_DATABASE_URL")
    if given:
        yield given
        return
    with postgres_server() as server:
        assert server is not None
        yield server.url


@pytest.fixture
def pg_url(pg_server_url: str) -> str:
    """A fresh, empty database on the session's server (each test its own)."""
    from testkit.postgres import create_database

    return create_database(pg_server_url)


@pytest.fixture
def live(tmp_path: Path) -> Iterator[tuple[str, str, Starlette]]:
    """The relay and a fake provider of its own, each on a real port (streams are really
    streamed, a client can leave mid-answer): (relay URL, a student's token, the relay app)."""
    upstream = create_fake_upstream()
    with serve_asgi(upstream) as up:
        settings = make_settings(tmp_path, base=up)
        app = create_app(settings)
        with serve_asgi(app) as relay:
            yield relay, issue_token(settings, "student@example.com"), app
