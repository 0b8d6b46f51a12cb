"""Request parameters the routes share, checked one way everywhere."""

from __future__ import annotations

from starlette.requests import Request

from relay.errors import BadRequest


def int_param(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise BadRequest(f"{name} must be a whole number from {low} to {high}")
    return int(raw)


def looks_like_email(value: str) -> bool:
    local, at, domain = value.strip().partition("@")
    return bool(at and local and "." in domain and len(value) <= 254 and " " not in value.strip())
