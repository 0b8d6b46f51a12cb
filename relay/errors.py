"""One error hierarchy, one JSON envelope.

Every error the relay itself produces answers
`{"message": m, "error": {"message": m, "type": t, "code": c}}` so that aipipe clients (which read
`message`) and OpenAI SDKs (which read `error`) both understand it. Upstream error bodies are never
reshaped: they pass through the proxy untouched.
"""

from __future__ import annotations

from starlette.responses import JSONResponse


class RelayError(Exception):
    status = 500
    type = "server_error"
    code = "internal_error"

    def __init__(
        self, message: str, *, code: str | None = None, headers: dict[str, str] | None = None
    ):
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        self.headers = headers or {}

    def response(self) -> JSONResponse:
        return error_response(self.status, self.message, self.type, self.code, self.headers)


class BadRequest(RelayError):
    status, type, code = 400, "invalid_request_error", "bad_request"


class Unauthorized(RelayError):
    status, type, code = 401, "authentication_error", "invalid_token"


class Forbidden(RelayError):
    status, type, code = 403, "permission_error", "forbidden"


class NotFound(RelayError):
    status, type, code = 404, "invalid_request_error", "not_found"


class MethodNotAllowed(RelayError):
    status, type, code = 405, "invalid_request_error", "method_not_allowed"


class PayloadTooLarge(RelayError):
    status, type, code = 413, "invalid_request_error", "payload_too_large"


class QuotaExceeded(RelayError):
    """Over budget: 429 that tells the OpenAI SDKs not to retry."""

    status, type, code = 429, "insufficient_quota", "insufficient_quota"

    def __init__(self, message: str, *, headers: dict[str, str] | None = None):
        super().__init__(message, headers={"x-should-retry": "false", **(headers or {})})


class RateLimited(RelayError):
    status, type, code = 429, "rate_limit_error", "rate_limit_exceeded"

    def __init__(self, message: str, *, retry_after: int):
        super().__init__(message, headers={"Retry-After": str(retry_after)})


class UpstreamError(RelayError):
    """The provider could not be reached or broke; 502/504 with our envelope."""

    status, type, code = 502, "upstream_error", "upstream_unavailable"


class UpstreamTimeout(UpstreamError):
    status, code = 504, "upstream_timeout"


class ServiceUnavailable(RelayError):
    status, type, code = 503, "server_error", "not_configured"


def error_response(
    status: int, message: str, type_: str, code: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    body = {"message": message, "error": {"message": message, "type": type_, "code": code}}
    return JSONResponse(body, status_code=status, headers=headers)


def mask_secret(text: str) -> str:
    """Show at most the first 4 and last 2 characters of a secret."""
    if len(text) <= 8:
        return "****"
    return f"{text[:4]}****{text[-2:]}"
