"""Who may call the relay's own endpoints (not the provider routes)."""

from __future__ import annotations

from starlette.requests import Request

from relay.auth.tokens import Caller, token_from_request
from relay.errors import Forbidden, Unauthorized


def caller_of(request: Request) -> Caller:
    token = token_from_request(request.headers, request.query_params)
    return request.app.state.verifier.caller(token)


def require_user(request: Request) -> str:
    """The caller's email; native provider keys are refused (they have no AI Pipe identity)."""
    caller = caller_of(request)
    if caller.email is None:
        raise Unauthorized("This endpoint needs an AI Pipe token, not a provider key")
    return caller.email


def require_admin(request: Request) -> str:
    caller = caller_of(request)
    if caller.email is None:
        raise Unauthorized("This endpoint needs an AI Pipe token, not a provider key")
    if not (caller.operator or request.app.state.policy.is_admin(caller.email)):
        raise Forbidden("Admins only", code="not_admin")
    return caller.email
