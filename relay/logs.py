"""Structured logs: one JSON line per request on stderr. Tokens and keys are never logged."""

from __future__ import annotations

import json
import logging
import sys
from typing import Any

request_log = logging.getLogger("aipipe.requests")


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


def log_request(**fields: Any) -> None:
    if request_log.isEnabledFor(logging.INFO):
        request_log.info("request", extra={"fields": fields})
