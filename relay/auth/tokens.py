"""AI Pipe tokens (HS256 JWTs) and how a request carries them."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass

import jwt

from relay.errors import Unauthorized
from relay.policy import PolicyView
from relay.settings import Settings

# OpenAI, OpenRouter and Anthropic (sk-ant-…) keys, and Google's, pass straight through.
NATIVE_PREFIXES = ("sk-", "AIza")
_CACHE_MAX = 10_000
OPERATOR_SECONDS = 300  # the CLI's admin pass, minted for one command
_KEY_HEADERS = ("x-goog-api-key", "x-api-key")  # where provider SDKs put an API key


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is calling: an AI Pipe user (email) or a native provider key (no budget, no costing)."""

    email: str | None = None
    native_key: str | None = None
    operator: bool = False  # minted by the CLI with the server's secret: admin rights


def issue_token(
    settings: Settings,
    email: str,
    *,
    now: float | None = None,
    operator: bool = False,
    policy: PolicyView | None = None,
) -> str:
    """A token for `email`, with the salt of `policy` (the one in force; default: the settings')."""
    email = email.strip().lower()
    issued = int(now if now is not None else time.time())
    claims: dict[str, object] = {"email": email, "iat": issued}
    if operator:
        claims["role"] = "operator"
        claims["exp"] = issued + OPERATOR_SECONDS  # whatever lifetime users' tokens have
    elif settings.token_days:
        claims["exp"] = issued + int(settings.token_days * 86400)
    salt = (policy or settings.policy).salt_for(email)
    if salt:
        claims["salt"] = salt
    return jwt.encode(claims, settings.secret, algorithm="HS256")


def token_from_request(
    headers: Mapping[str, str], query: Mapping[str, str], *, gemini_path: bool = False
) -> str | None:
    """Carriers in order: `Authorization: Bearer t`, bare `Authorization: t`, `x-goog-api-key`
    (Google's SDKs), `x-api-key` (Anthropic's), and `?key=` on Gemini paths (Google SDKs send
    keys there)."""
    auth = headers.get("authorization", "").strip()
    if auth:
        scheme, _, rest = auth.partition(" ")
        return rest.strip() if scheme.lower() == "bearer" else auth
    for name in _KEY_HEADERS:
        value = headers.get(name, "").strip()
        if value:
            return value
    if gemini_path and query.get("key"):
        return query["key"].strip()
    return None


class TokenVerifier:
    """Verifies tokens, caching good signatures (the HMAC is the costly part); expiry and the
    policy's salt are checked on every call so revocation takes effect at once."""

    def __init__(self, settings: Settings, policy: PolicyView | None = None):
        self._settings = settings
        self._policy = policy or settings.policy  # the app passes its LivePolicy: reloads apply
        self._cache: dict[str, dict] = {}

    def caller(self, token: str | None) -> Caller:
        if not token:
            raise Unauthorized("Missing Authorization: Bearer token", code="missing_token")
        if token.startswith(NATIVE_PREFIXES):
            if not self._settings.native_keys:
                raise Unauthorized(
                    "This relay does not accept provider keys: sign in for an AI Pipe token",
                    code="native_keys_refused",
                )
            return Caller(native_key=token)
        claims = self.verify(token)
        return Caller(email=claims["email"], operator=claims.get("role") == "operator")

    def verify(self, token: str) -> dict:
        claims = self._cache.get(token)
        if claims is None:
            claims = self._decode(token)
            if len(self._cache) >= _CACHE_MAX:
                self._cache.clear()
            self._cache[token] = claims
        exp = claims.get("exp")
        if exp is not None and time.time() >= exp:
            raise Unauthorized("Token has expired: sign in again", code="token_expired")
        salt = self._policy.salt_for(claims["email"])
        if salt is not None and claims.get("salt") != salt:
            raise Unauthorized("Token is no longer valid: sign in again", code="token_revoked")
        return claims

    def _decode(self, token: str) -> dict:
        try:
            claims = jwt.decode(
                token,
                self._settings.secret,
                algorithms=["HS256"],  # pinned: refuses `none` and RS/HS confusion
                options={"require": ["email", "iat"], "verify_exp": False},
                leeway=60,
            )
        except jwt.ExpiredSignatureError as e:
            raise Unauthorized("Token has expired: sign in again", code="token_expired") from e
        except jwt.PyJWTError as e:
            raise Unauthorized("Invalid token: sign in again to get a new one") from e
        email = claims.get("email")
        if not isinstance(email, str) or "@" not in email:
            raise Unauthorized("Invalid token: no email")
        exp = claims.get("exp")
        if exp is not None and not isinstance(exp, int | float):
            raise Unauthorized("Invalid token: bad exp")
        claims["email"] = email.lower()
        return claims
