"""Getting a token: Google sign-in (`/token`) and the dev sign-in form (`/dev-login`)."""

from __future__ import annotations

import json
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from relay.auth.tokens import issue_token
from relay.errors import BadRequest, NotFound, Unauthorized
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


routes = [
    Route("/token", token, methods=["GET", "POST"]),
    Route("/dev-login", dev_login, methods=["POST"]),
]
