"""A fake Google identity provider: one RSA key, its certificate in Google's v1 format, and ID
tokens signed with it (or with an untrusted key, for negative tests)."""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import time
from typing import Any

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

CERTS_PATH = "/oauth2/v1/certs"
DEFAULT_CLIENT_ID = "test-client-id.apps.googleusercontent.com"


@functools.cache
def _keypair(label: str) -> tuple[rsa.RSAPrivateKey, str]:
    """An RSA key and a self-signed PEM certificate; cached because generation is slow."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"fake-google-{label}")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=365))
            .sign(key, hashes.SHA256()))
    return key, cert.public_bytes(serialization.Encoding.PEM).decode()


class FakeGoogle:
    """Issue Google-style ID tokens and serve the certificates that verify them."""

    def __init__(self, client_id: str = DEFAULT_CLIENT_ID, kid: str = "fake-kid-1") -> None:
        self.client_id = client_id
        self.kid = kid
        self.key, self.cert_pem = _keypair("trusted")
        self.cert_fetches = 0  # lets tests check that the relay caches the certs

    @property
    def untrusted_key(self) -> rsa.RSAPrivateKey:
        """A key whose certificate is never served: tokens signed with it must be refused."""
        return _keypair("untrusted")[0]

    def certs(self) -> dict[str, str]:
        """Google's v1 certs document: key id → PEM certificate."""
        return {self.kid: self.cert_pem}

    def certs_app(self) -> Starlette:
        """ASGI app serving GET /oauth2/v1/certs."""

        async def certs(request: Request) -> JSONResponse:
            self.cert_fetches += 1
            return JSONResponse(self.certs(), headers={"cache-control": "public, max-age=3600"})

        return Starlette(routes=[Route(CERTS_PATH, certs)])

    def id_token(
        self,
        email: str,
        *,
        aud: str | None = None,
        email_verified: bool = True,
        iss: str = "https://accounts.google.com",
        exp_in: int = 3600,
        name: str | None = None,
        picture: str | None = None,
        kid: str | None = None,
        key: rsa.RSAPrivateKey | None = None,
        **extra: Any,
    ) -> str:
        """An RS256 ID token like Google Sign-In's `credential`; negative `exp_in` gives an
        expired token, `key=fake.untrusted_key` a forged one."""
        now = int(time.time())
        audience = aud or self.client_id
        claims: dict[str, Any] = {
            "iss": iss, "azp": audience, "aud": audience,
            "sub": str(int(hashlib.sha256(email.lower().encode()).hexdigest()[:15], 16)),
            "email": email, "email_verified": email_verified,
            "iat": now, "nbf": now - 60, "exp": now + exp_in, **extra}
        if name is not None:
            claims["name"] = name
        if picture is not None:
            claims["picture"] = picture
        return jwt.encode(claims, key or self.key, algorithm="RS256",
                          headers={"kid": kid or self.kid})
