"""Verifying Google ID tokens (Sign in with Google) with google-auth, certs cached."""

from __future__ import annotations

import time

import httpx
import jwt
from google.auth import exceptions as google_exceptions
from google.auth import jwt as google_jwt

from relay.errors import Unauthorized

ISSUERS = frozenset({"accounts.google.com", "https://accounts.google.com"})
CERTS_TTL = 3600.0  # Google rotates keys over days; an unknown kid triggers an early refetch
REFETCH_GAP = 30.0


class GoogleVerifier:
    def __init__(self, client_id: str | None, certs_url: str, client: httpx.AsyncClient):
        self.client_id = client_id
        self.certs_url = certs_url
        self.client = client
        self._certs: dict[str, str] = {}
        self._fetched = 0.0

    async def verify(self, credential: str) -> dict:
        """Claims of a valid Google ID token for this client id, or Unauthorized (never a 500)."""
        if not self.client_id:
            raise Unauthorized("Google sign-in is not configured on this relay (GOOGLE_CLIENT_ID)")
        if not credential or len(credential) > 8192:
            raise Unauthorized("Missing or oversized Google credential", code="invalid_credential")
        kid = _kid(credential)
        certs = await self._certs_for(kid)
        try:
            claims = google_jwt.decode(credential, certs=certs, audience=self.client_id)
        except (ValueError, google_exceptions.GoogleAuthError, jwt.PyJWTError) as e:
            raise Unauthorized(
                f"Google credential rejected: {_reason(e)}", code="invalid_credential"
            ) from e
        if claims.get("iss") not in ISSUERS:
            raise Unauthorized("Google credential has the wrong issuer", code="invalid_credential")
        email = claims.get("email")
        if not isinstance(email, str) or "@" not in email:
            raise Unauthorized("Google credential has no email", code="invalid_credential")
        if claims.get("email_verified") not in (True, "true"):
            raise Unauthorized("Google has not verified this email", code="email_not_verified")
        return claims

    async def _certs_for(self, kid: str | None) -> dict[str, str]:
        now = time.monotonic()
        stale = now - self._fetched > CERTS_TTL
        unknown = kid is not None and kid not in self._certs and now - self._fetched > REFETCH_GAP
        if not self._certs or stale or unknown:
            try:
                resp = await self.client.get(self.certs_url, timeout=10)
                resp.raise_for_status()
                certs = resp.json()
            except (httpx.HTTPError, ValueError) as e:
                if not self._certs:
                    raise Unauthorized(
                        "Could not fetch Google's signing keys; try again", code="certs_unavailable"
                    ) from e
            else:
                if isinstance(certs, dict) and "keys" not in certs:
                    self._certs = {str(k): str(v) for k, v in certs.items()}
                    self._fetched = now
        return self._certs


def _kid(token: str) -> str | None:
    try:
        return jwt.get_unverified_header(token).get("kid")
    except jwt.PyJWTError as e:
        raise Unauthorized("Google credential is not a JWT", code="invalid_credential") from e


def _reason(error: Exception) -> str:
    text = str(error).split("\n")[0]
    return text[:160] if "eyJ" not in text else type(error).__name__  # never echo a token
