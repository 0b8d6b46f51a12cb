"""Structured logs: one JSON line per request with id, user, provider, model, status, cost and
latency; tokens and provider keys never appear in any log line."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from decimal import Decimal

import pytest

from relay.auth.tokens import issue_token
from relay.logs import JsonLines, log_request
from testkit.fakes.upstream import DEFAULT_KEYS
from tests.conftest import auth

CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hello"}]}


class Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(JsonLines())
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.startswith("httpx") and "http://testserver/" in record.getMessage():
            return  # the test's own client logging the URLs it called, not the relay
        self.lines.append(self.format(record))

    def requests(self) -> list[dict]:
        return [d for d in map(json.loads, self.lines) if d["logger"] == "aipipe.requests"]


@pytest.fixture
def logs() -> Iterator[Lines]:
    """Every record of every logger, at DEBUG, formatted as the relay formats them."""
    handler = Lines()
    root = logging.getLogger()
    aipipe = logging.getLogger("aipipe")
    saved = (root.level, aipipe.level, aipipe.propagate)
    root.addHandler(handler)
    aipipe.addHandler(handler)
    root.setLevel(logging.DEBUG)
    aipipe.setLevel(logging.DEBUG)
    aipipe.propagate = False  # each record once, through `handler`
    yield handler
    root.removeHandler(handler)
    aipipe.removeHandler(handler)
    root.level, (aipipe.level, aipipe.propagate) = saved[0], saved[1:]


def test_a_forwarded_request_is_one_json_line(client, token, logs) -> None:
    """A priced chat call logs exactly one line holding who, what, status, cost and latency."""
    r = client.post("/openai/v1/chat/completions", json=CHAT, headers=auth(token()))
    assert r.status_code == 200
    [line] = logs.requests()
    assert line["user"] == "student@example.com"
    assert (line["provider"], line["model"], line["status"]) == ("openai", "gpt-4o-mini", 200)
    assert (line["method"], line["path"]) == ("POST", "/openai/v1/chat/completions")
    cost = Decimal(line["cost"])
    assert cost > 0 and cost.quantize(Decimal("1e-8")) == Decimal(r.headers["x-aipipe-cost"])
    assert line["source"] == "computed" and line["outcome"] == "ok"
    assert len(line["id"]) == 32 and line["latency_ms"] >= 0


def test_a_stream_is_logged_once_when_it_ends(client, token, logs) -> None:
    """A streamed call logs one line, after the stream, with its cost."""
    r = client.post("/openai/v1/chat/completions", json={**CHAT, "stream": True},
                    headers=auth(token()))
    assert r.status_code == 200
    [line] = logs.requests()
    assert line["streamed"] is True and float(line["cost"]) > 0 and line["outcome"] == "ok"


def test_refused_requests_are_logged_too(client, token, logs) -> None:
    """401, 404 and 429 answers each get their line (status, path), without a user."""
    client.get("/openai/v1/models")
    client.get("/nowhere/x", headers=auth(token()))
    client.post("/openai/v1/chat/completions", json=CHAT, headers=auth(token("blocked@example.com")))
    statuses = [(line["status"], line["path"]) for line in logs.requests()]
    assert statuses == [(401, "/openai/v1/models"), (404, "/nowhere/x"),
                        (429, "/openai/v1/chat/completions")]


def test_a_broken_upstream_stream_logs_both_statuses(client, token, logs) -> None:
    """A provider 500 is logged with its status and outcome error."""
    client.post("/openai/v1/chat/completions", json=CHAT, headers={**auth(token()), "x-fake": "error500"})
    [line] = logs.requests()
    assert line["status"] == 500 and line["outcome"] == "error" and line["cost"] == "0"


def test_health_probes_are_not_logged_and_long_paths_are_cut(client, logs) -> None:
    """/healthz successes make no noise; a huge path is truncated in the log line."""
    assert client.get("/healthz").status_code == 200
    client.get("/x" * 3000)
    [line] = logs.requests()
    assert line["status"] == 404 and len(line["path"]) == 300


def test_log_request_outside_a_request_still_writes_a_line(logs) -> None:
    """Fields logged after the response ended (a stream closed late) are not lost."""
    log_request(id="abc", user="u@example.com", cost="0.1")
    [line] = logs.requests()
    assert line["id"] == "abc" and line["cost"] == "0.1" and line["level"] == "info"


def test_tokens_and_keys_never_reach_the_logs(client, settings, logs) -> None:
    """Across successes, refusals, forged tokens, ?key= carriers, native keys, provider errors
    that quote the key and relay errors, no log line holds a token or a provider key."""
    tok = issue_token(settings, "student@example.com")
    admin = issue_token(settings, "admin@example.com")
    forged = tok[:-4] + ("AAAA" if not tok.endswith("AAAA") else "BBBB")
    gem = "/geminiv1beta/models/gemini-2.5-flash:generateContent"
    body = {"contents": [{"parts": [{"text": "hi"}]}]}
    client.post("/openai/v1/chat/completions", json=CHAT, headers=auth(tok))
    client.post("/openai/v1/chat/completions", json=CHAT, headers={**auth(tok), "x-fake": "leakkey"})
    client.post("/openai/v1/chat/completions", json=CHAT, headers=auth(forged))
    client.post(f"{gem}?key={tok}", json=body)
    client.post(f"{gem}?key={forged}", json=body)
    client.get("/openai/v1/models", headers=auth("sk-native-user-key-123456"))
    client.get("/usage", headers=auth(tok))
    client.get("/admin/usage", headers=auth(admin))
    client.get(f"/proxy/http://127.0.0.1/?token={tok}", headers=auth(tok))
    client.post("/openai/v1/chat/completions", content=b"{", headers={
        **auth(tok), "content-type": "application/json"})
    text = "\n".join(logs.lines)
    assert len(logs.requests()) == 10
    for secret in (tok, admin, forged, "sk-native-user-key-123456", *DEFAULT_KEYS.values(),
                   settings.secret):
        assert secret not in text
    assert tok[-12:] not in text  # not even the signature part


def test_json_lines_formatter_keeps_errors_on_one_line() -> None:
    """Exceptions are logged as one JSON object (the traceback inside a field)."""
    try:
        raise ValueError("boom")
    except ValueError:
        import sys

        record = logging.LogRecord("aipipe", logging.ERROR, __file__, 1, "failed %s", ("x",),
                                   sys.exc_info())
    out = JsonLines().format(record)
    assert "\n" not in out
    data = json.loads(out)
    assert data["message"] == "failed x" and "ValueError: boom" in data["error"]
