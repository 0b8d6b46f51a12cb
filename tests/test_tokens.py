import time

import jwt
import pytest

from relay.auth.tokens import TokenVerifier, issue_token, token_from_request
from relay.errors import Unauthorized
from relay.policy import parse_policy
from tests.conftest import SECRET, make_settings, with_settings


def test_token_claims(tmp_path) -> None:
    """A token carries email and iat, the policy's salt, and exp when a lifetime is set."""
    s = with_settings(make_settings(tmp_path), token_days=1.0)
    claims = jwt.decode(issue_token(s, "Salted@Example.com"), SECRET, algorithms=["HS256"])
    assert claims["email"] == "salted@example.com"
    assert claims["salt"] == "pepper-1"
    assert claims["exp"] - claims["iat"] == 86400


@pytest.mark.parametrize(
    ("headers", "query", "gemini", "expected"),
    [
        ({"authorization": "Bearer abc"}, {}, False, "abc"),
        ({"authorization": "bearer   abc"}, {}, False, "abc"),
        ({"authorization": "abc"}, {}, False, "abc"),
        ({"x-goog-api-key": "abc"}, {}, True, "abc"),
        ({}, {"key": "abc"}, True, "abc"),
        ({}, {"key": "abc"}, False, None),
        ({"authorization": "Bearer first", "x-goog-api-key": "second"}, {}, True, "first"),
    ],
)
def test_carriers_in_order(headers, query, gemini, expected) -> None:
    """Bearer, bare Authorization, x-goog-api-key, then ?key= only on Gemini paths."""
    assert token_from_request(headers, query, gemini_path=gemini) == expected


def test_revoked_by_salt_change(tmp_path) -> None:
    """Changing a user's salt in the policy refuses every token issued before."""
    s = make_settings(tmp_path)
    old = issue_token(s, "salted@example.com")
    assert TokenVerifier(s).caller(old).email == "salted@example.com"
    changed = with_settings(s, policy=parse_policy({"salt": {"salted@example.com": "new"}}))
    with pytest.raises(Unauthorized, match="no longer valid"):
        TokenVerifier(changed).caller(old)


@pytest.mark.parametrize(
    "forge",
    [
        lambda: jwt.encode({"email": "a@b.c", "iat": 1}, "wrong-secret-" * 4, algorithm="HS256"),
        lambda: jwt.encode({"email": "a@b.c", "iat": 1}, None, algorithm="none"),
        lambda: jwt.encode({"email": "a@b.c", "iat": 1}, SECRET * 2, algorithm="HS512"),
        lambda: jwt.encode({"iat": 1}, SECRET, algorithm="HS256"),
        lambda: jwt.encode({"email": "not-an-email", "iat": 1}, SECRET, algorithm="HS256"),
        lambda: "garbage.token.here",
    ],
)
def test_forged_or_malformed_tokens_are_refused(tmp_path, forge) -> None:
    """Wrong key, alg none, another algorithm, missing or bad claims: all 401."""
    with pytest.raises(Unauthorized):
        TokenVerifier(make_settings(tmp_path)).caller(forge())


def test_expired_token_is_refused(tmp_path) -> None:
    """A token past its exp is refused with a message saying so."""
    s = with_settings(make_settings(tmp_path), token_days=1.0)
    old = issue_token(s, "a@b.c", now=time.time() - 3 * 86400)
    with pytest.raises(Unauthorized, match="expired"):
        TokenVerifier(s).caller(old)


def test_native_keys_are_recognised(tmp_path) -> None:
    """Provider keys pass through as native keys, with no AI Pipe identity."""
    v = TokenVerifier(make_settings(tmp_path))
    for key in ("sk-proj-abc", "sk-or-v1-abc", "AIzaSyabc"):
        caller = v.caller(key)
        assert caller.native_key == key and caller.email is None


def test_missing_token_message(tmp_path) -> None:
    """No token at all: the SPEC's message."""
    with pytest.raises(Unauthorized, match="Missing Authorization: Bearer token"):
        TokenVerifier(make_settings(tmp_path)).caller(None)


def test_token_lifetime_comes_from_the_environment(tmp_path) -> None:
    """AIPIPE_TOKEN_DAYS, as an operator sets it, gives issued tokens an `exp` that many days
    out; a token past it is refused."""
    from relay.settings import load_settings

    s = load_settings({"AIPIPE_SECRET": SECRET, "AIPIPE_TOKEN_DAYS": "0.5"}, cwd=tmp_path)
    assert s.token_days == 0.5
    claims = jwt.decode(issue_token(s, "a@example.com"), SECRET, algorithms=["HS256"])
    assert claims["exp"] - claims["iat"] == 43200
    old = issue_token(s, "a@example.com", now=time.time() - 43201)
    with pytest.raises(Unauthorized, match="expired"):
        TokenVerifier(s).verify(old)


def test_operator_pass_lives_five_minutes_whatever_token_days_says(tmp_path) -> None:
    """The CLI's operator token (admin rights) expires 300 s after issue even when users'
    tokens live AIPIPE_TOKEN_DAYS days; users' tokens keep that lifetime."""
    s = with_settings(make_settings(tmp_path), token_days=30.0)
    operator = jwt.decode(issue_token(s, "op@aipipe.local", operator=True), SECRET,
                          algorithms=["HS256"])
    assert operator["role"] == "operator" and operator["exp"] - operator["iat"] == 300
    user = jwt.decode(issue_token(s, "a@b.c"), SECRET, algorithms=["HS256"])
    assert user["exp"] - user["iat"] == 30 * 86400


def test_native_keys_can_be_turned_off(tmp_path) -> None:
    """With native keys off, a provider key is refused (401), not passed through."""
    v = TokenVerifier(with_settings(make_settings(tmp_path), native_keys=False))
    with pytest.raises(Unauthorized, match="does not accept provider keys"):
        v.caller("sk-proj-abc")
