"""Getting a token: Google sign-in (`/token`) and the dev sign-in form (`/dev-login`).

`/dev-login` mints any token, admin included, for whoever reaches it, so beyond "--dev and a
loopback client" it refuses what a web page could send through the developer's browser: a
body that is not JSON (an HTML form posts without a CORS preflight, and the edge grants none
here), a Host that is not a loopback name (a DNS-rebinding page names its own host), and an
Origin other than a loopback one."""

from __future__ import annotations

import ipaddress
import json
from urllib.parse import parse_qsl, urlsplit

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from relay.auth.tokens import issue_token
from relay.errors import BadRequest, Forbidden, NotFound, Unauthorized
from relay.forwarded import client_is_loopback
from relay.routes.params import looks_like_email

MAX_FORM = 16 * 1024


async def token(request: Request) -> JSONResponse:
    """Exchange a Google ID token (`credential`) for an AI Pipe token."""
    credential = request.query_params.get("credential")
    if request.method == "POST" and not credential:
        credential = (await _body_fields(request)).get("credential")
    if not isinstance(credential, str) or not credential:
        raise Unauthorized("Missing Google credential", code="missing_credential")
    claims = await request.app.state.google.verify(credential)
    email = claims["email"].lower()
    state = request.app.state
    answer = {"token": issue_token(state.settings, email, policy=state.policy), "email": email}
    for extra in ("name", "picture"):
        if isinstance(claims.get(extra), str):
            answer[extra] = claims[extra]
    return JSONResponse(answer, headers={"cache-control": "no-store"})


async def dev_login(request: Request) -> JSONResponse:
    """Email-only sign-in for local trials: --dev mode, loopback clients only."""
    settings = request.app.state.settings
    if not settings.dev or not _is_loopback(request):
        raise NotFound("Not found")
    if not _loopback_name(request.headers.get("host", "")):
        raise Forbidden(
            "The dev sign-in answers only at a loopback address (localhost, 127.0.0.1, [::1])",
            code="not_loopback_host",
        )
    origin = request.headers.get("origin")
    if origin is not None and not _loopback_name(urlsplit(origin).netloc):
        raise Forbidden("The dev sign-in does not answer other sites", code="cross_site")
    if request.headers.get("content-type", "").split(";")[0].strip().lower() != "application/json":
        raise BadRequest("Send the email as JSON: {\"email\": ...}", code="unsupported_media_type")
    email = (await _body_fields(request)).get("email")
    if not isinstance(email, str) or not looks_like_email(email):
        raise BadRequest("Enter an email address like you@example.com", code="invalid_email")
    email = email.strip().lower()
    return JSONResponse(
        {"token": issue_token(settings, email, policy=request.app.state.policy), "email": email,
         "dev": True},
        headers={"cache-control": "no-store"},
    )


async def _body_fields(request: Request) -> dict:
    body = await request.body()
    if len(body) > MAX_FORM:
        raise BadRequest("Request body too large")
    ctype = request.headers.get("content-type", "")
    if "json" in ctype:
        try:
            data = json.loads(body or b"{}")
        except ValueError as e:
            raise BadRequest("Request body is not valid JSON", code="invalid_json") from e
        return data if isinstance(data, dict) else {}
    if "x-www-form-urlencoded" in ctype:
        try:
            return dict(parse_qsl(body.decode(), keep_blank_values=True))
        except UnicodeDecodeError as e:
            raise BadRequest("Form body is not valid UTF-8") from e
    raise BadRequest("Send a JSON or url-encoded form body", code="unsupported_media_type")


def _is_loopback(request: Request) -> bool:
    return client_is_loopback(request.scope)  # behind trusted proxies: the real client's address


def _loopback_name(netloc: str) -> bool:
    """A Host (or an Origin's host) that names this machine: localhost, *.localhost or a
    loopback address, with any port."""
    host = urlsplit("//" + netloc.strip()).hostname or ""
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


routes = [
    Route("/token", token, methods=["GET", "POST"]),
    Route("/dev-login", dev_login, methods=["POST"]),
]
