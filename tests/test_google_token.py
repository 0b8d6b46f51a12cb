"""/token: Google ID tokens verified with google-auth against local certs; every failure a 401."""

from __future__ import annotations

import pytest

from relay.auth.tokens import TokenVerifier
from tests.conftest import make_settings, with_settings


def test_valid_credential_gives_a_working_token(client, fake_google, settings) -> None:
    """A good Google credential returns a token for its email, with name and picture."""
    cred = fake_google.id_token("Ann@Example.com", name="Ann", picture="https://x/p.png")
    r = client.get(f"/token?credential={cred}")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["email"] == "ann@example.com" and body["name"] == "Ann"
    assert TokenVerifier(settings).caller(body["token"]).email == "ann@example.com"
    assert (
        client.get("/usage", headers={"Authorization": f"Bearer {body['token']}"}).status_code
        == 200
    )


def test_post_form_and_json(client, fake_google) -> None:
    """POST /token takes the credential in a form or a JSON body."""
    cred = fake_google.id_token("a@example.com")
    assert client.post("/token", data={"credential": cred}).status_code == 200
    assert client.post("/token", json={"credential": cred}).status_code == 200


def test_certs_are_cached(client, fake_google) -> None:
    """Google's certs are fetched once for many sign-ins."""
    for i in range(3):
        assert (
            client.get(f"/token?credential={fake_google.id_token(f'u{i}@example.com')}").status_code
            == 200
        )
    assert fake_google.cert_fetches == 1


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda g: g.id_token("a@example.com", aud="someone-else"), "rejected"),
        (lambda g: g.id_token("a@example.com", iss="https://evil.example"), "issuer"),
        (lambda g: g.id_token("a@example.com", exp_in=-3600), "rejected"),
        (lambda g: g.id_token("a@example.com", email_verified=False), "not verified"),
        (lambda g: g.id_token("a@example.com", key=g.untrusted_key), "rejected"),
        (lambda g: "not-a-jwt", "not a JWT"),
        (lambda g: "", "Missing"),
    ],
)
def test_bad_credentials_are_401(client, fake_google, make, message) -> None:
    """Wrong audience, issuer, expiry, unverified email, forged signature, junk: 401 JSON."""
    r = client.get("/token", params={"credential": make(fake_google)})
    assert r.status_code == 401, r.text
    assert message in r.json()["message"]
    assert r.json()["error"]["type"] == "authentication_error"


def test_without_client_id_google_sign_in_is_off(make_client, tmp_path, fake_google) -> None:
    """With no GOOGLE_CLIENT_ID the endpoint says sign-in is not configured (401, not 500)."""
    client = make_client(with_settings(make_settings(tmp_path), google_client_id=None))
    r = client.get(f"/token?credential={fake_google.id_token('a@example.com')}")
    assert r.status_code == 401 and "GOOGLE_CLIENT_ID" in r.json()["message"]
