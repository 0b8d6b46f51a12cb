"""Structured logs: one JSON line per request on stderr. Tokens and keys are never logged.

The edge middleware (relay/edge.py) writes the line when the response is done: id, method, path
(never the query string, which may carry `?key=`), HTTP status, the client's address (behind
trusted proxies: the original client's, see relay.forwarded) and latency. When the request was
forwarded to a provider, the proxy's `log_request(...)` fields (user, provider, model, cost,
outcome, …) are merged into that same line, so an operator sees exactly one line per request.
"""

from __future__ import annotations

import json
import logging
import sys
import time
import uuid
from contextvars import ContextVar, Token
from typing import Any

from starlette.types import Scope

request_log = logging.getLogger("aipipe.requests")
_current: ContextVar[dict[str, Any] | None] = ContextVar("aipipe_request_log", default=None)
MAX_PATH = 300  # a hostile 8 kB path must not become an 8 kB log line
QUIET = ("/healthz", "/metrics")  # answered every few seconds per replica: logged only when failing


class JsonLines(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        fields: dict[str, Any] = getattr(record, "fields", None) or {"message": record.getMessage()}
        line = {"level": record.levelname.lower(), "logger": record.name, **fields}
        if record.exc_info:
            line["error"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


def configure_logging(level: int = logging.INFO) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonLines())
    root = logging.getLogger("aipipe")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False
    # The JSON lines never show thread or process names; finding them costs more per record
    # (multiprocessing.current_process() above all) than formatting the line.
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False


def log_request(**fields: Any) -> None:
    """Fields about the current request (from the proxy). Inside a request they join its one
    line; outside it (e.g. a stream closed after its response ended) they are a line of their own."""
    entry = _current.get()
    if entry is not None and not entry.get("_done"):
        entry.update(fields)
    else:
        _emit(fields)


def _emit(fields: dict[str, Any]) -> None:
    if request_log.isEnabledFor(logging.INFO):
        # What .info() does, minus walking the stack for the caller's file and line (the
        # JSON line never shows them): a tenth of the relay's per-request CPU otherwise.
        record = request_log.makeRecord(
            request_log.name, logging.INFO, __file__, 0, "request", (), None, extra={"fields": fields}
        )
        request_log.handle(record)


def begin_request() -> tuple[dict[str, Any], Token[dict[str, Any] | None]]:
    """Open the current request's log entry (the edge calls this first)."""
    entry: dict[str, Any] = {}
    return entry, _current.set(entry)


def end_request(
    begun: tuple[dict[str, Any], Token[dict[str, Any] | None]],
    scope: Scope,
    status: int,
    started: float,
) -> None:
    """Write the request's one line once its response has been sent."""
    entry, token = begun
    _current.reset(token)
    entry["_done"] = True
    if not (scope["path"] in QUIET and status == 200):  # health probes, scrapes: no noise
        _emit(_line(scope, entry, status, started))


def _line(scope: Scope, entry: dict[str, Any], status: int, started: float) -> dict[str, Any]:
    fields = {k: v for k, v in entry.items() if k != "_done"}
    line: dict[str, Any] = {
        "id": fields.pop("id", None) or uuid.uuid4().hex,
        "method": scope["method"],
        "path": scope["path"][:MAX_PATH],
        "status": status,
        "client": client[0] if (client := scope.get("client")) else None,
    }
    if "status" in fields and fields["status"] != status:
        # e.g. a stream that began 200 and broke: the ledger's status differs from the HTTP one
        line["ledger_status"] = fields.pop("status")
    fields.pop("status", None)
    fields.pop("path", None)
    line.update(fields)
    line["latency_ms"] = round((time.perf_counter() - started) * 1000, 2)
    return line
