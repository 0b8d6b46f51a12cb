"""Every error the relay makes answers the one envelope, with the right status; CORS everywhere."""

from __future__ import annotations

import pytest

from tests.conftest import auth


def assert_envelope(r, status: int) -> dict:
    assert r.status_code == status, r.text
    body = r.json()
    assert body["message"] == body["error"]["message"]
    assert body["error"]["type"] and body["error"]["code"]
    assert r.headers["access-control-allow-origin"] == "*"
    return body


def test_missing_token(client) -> None:
    """No token: 401 with the SPEC's message."""
    body = assert_envelope(client.post("/openai/v1/chat/completions", json={}), 401)
    assert body["message"] == "Missing Authorization: Bearer token"


def test_unknown_provider(client, token) -> None:
    """An unknown first segment: 404 naming it."""
    body = assert_envelope(client.get("/nosuch/v1/x", headers=auth(token())), 404)
    assert body["message"] == "Unknown provider: nosuch"


@pytest.mark.parametrize(
    ("path", "body", "status", "code"),
    [
        ("/openai/v1/chat/completions", b"{not json", 400, "invalid_json"),
        ("/openai/v1/chat/completions", b"[1,2]", 400, "invalid_json"),
        ("/openai/v1/chat/completions", b'{"model": 5}', 400, "invalid_model"),
        (
            "/openai/v1/chat/completions",
            b'{"model": "gpt-4o-mini", "max_tokens": -3}',
            400,
            "invalid_max_tokens",
        ),
        ("/openai/v1/fine_tuning/jobs", b'{"model": "gpt-4o-mini"}', 400, "unsupported_endpoint"),
        ("/similarity", b"{bad", 400, "invalid_json"),
        ("/similarity", b'{"docs": []}', 400, "bad_request"),
    ],
)
def test_bad_requests(client, token, path, body, status, code) -> None:
    """Malformed or unsupported requests get a clear 4xx in the envelope, never a 500."""
    r = client.post(
        path, content=body, headers={**auth(token()), "content-type": "application/json"}
    )
    assert assert_envelope(r, status)["error"]["code"] == code


def test_over_budget_is_429_without_retry(client, token) -> None:
    """A user with no budget left gets 429 insufficient_quota and x-should-retry: false."""
    r = client.post(
        "/openai/v1/chat/completions",
        json={"model": "gpt-4o-mini", "messages": []},
        headers=auth(token("blocked@example.com")),
    )
    body = assert_envelope(r, 429)
    assert body["error"]["code"] == "insufficient_quota"
    assert r.headers["x-should-retry"] == "false"
    assert body["message"].startswith("Usage $0.0000 / $0.0000 in 1 days")


def test_preflight(client) -> None:
    """OPTIONS anywhere: 200 with the CORS headers the SPEC lists."""
    r = client.options(
        "/openai/v1/chat/completions",
        headers={
            "Access-Control-Request-Headers": "authorization, x-custom",
            "Origin": "https://app.example",
            "Access-Control-Request-Method": "POST",
        },
    )
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] == "*"
    for method in ("GET", "POST", "PUT", "PATCH", "DELETE"):
        assert method in r.headers["access-control-allow-methods"]
    assert r.headers["access-control-allow-headers"] == "authorization, x-custom"
    assert r.headers["access-control-max-age"] == "86400"


def test_body_too_large(make_client, settings, token) -> None:
    """A body over the configured limit is refused with 413."""
    from tests.conftest import with_settings

    client = make_client(with_settings(settings, max_body_bytes=1000))
    r = client.post(
        "/openai/v1/chat/completions",
        content=b"x" * 2000,
        headers={**auth(token()), "content-type": "application/json"},
    )
    assert_envelope(r, 413)


def test_provider_without_key(make_client, settings, token) -> None:
    """A provider the operator has no key for answers a clear 503."""
    from tests.conftest import with_settings

    client = make_client(with_settings(settings, provider_keys={}))
    r = client.post(
        "/openai/v1/chat/completions", json={"model": "gpt-4o-mini"}, headers=auth(token())
    )
    assert "OPENAI_API_KEY" in assert_envelope(r, 503)["message"]


def test_errors_never_echo_the_token(client) -> None:
    """A rejected token is not repeated in the answer."""
    bad = "eyJhbGciOiJIUzI1NiJ9.eyJlbWFpbCI6ImFAYi5jIn0.forgedsignature"
    r = client.get("/usage", headers=auth(bad))
    assert_envelope(r, 401)
    assert bad not in r.text and "forgedsignature" not in r.text


def test_exhausted_user_can_still_list_models(client, token) -> None:
    """Free calls pass with no budget left: a user can still see which models exist."""
    r = client.get("/openai/v1/models", headers=auth(token("blocked@example.com")))
    assert r.status_code == 200
    assert client.post("/openai/v1/chat/completions", json={"model": "gpt-4o-mini", "messages": []},
                       headers=auth(token("blocked@example.com"))).status_code == 429


def test_refusals_are_recorded_for_admins(client, token) -> None:
    """A request refused by the budget is in the ledger as 'refused' at $0, never forwarded."""
    client.post("/openai/v1/chat/completions", json={"model": "gpt-4o-mini", "messages": []},
                headers=auth(token("blocked@example.com")))
    rows = client.app.state.store.query("SELECT email, status, outcome, cost, cost_source FROM requests")
    assert rows == [("blocked@example.com", 429, "refused", 0, "free")]
