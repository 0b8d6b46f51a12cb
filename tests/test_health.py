"""/healthz tells the truth about the ledger: 503 with the reason while buffered rows cannot be
written, 200 again once they are, with nothing lost in between."""

from __future__ import annotations

import os
import signal

from tests.conftest import auth, make_settings
from tests.test_store_worker import _hold_duckdb_lock, wait_for

CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}


def test_healthz_is_503_while_flushes_fail_and_recovers(tmp_path, make_client, token) -> None:
    """The store worker dies and another process takes the file: rows wait in memory, /healthz
    answers 503 naming the failure; once the file is free they are written and it is 200."""
    settings = make_settings(tmp_path, store_idle=60)  # the store worker, as `aipipe serve` runs
    client = make_client(settings)
    headers = auth(token())
    assert client.post("/openai/v1/chat/completions", json=CHAT, headers=headers).status_code == 200
    store = client.app.state.store
    wait_for(lambda: client.get("/healthz").json()["rows_written"] == 1)

    os.kill(store.ledger.pid, signal.SIGKILL)
    holder = _hold_duckdb_lock(settings.db_path)  # as a notebook opening the live file would
    try:
        assert client.post("/openai/v1/chat/completions", json=CHAT, headers=headers).status_code == 200
        wait_for(lambda: client.get("/healthz").status_code == 503)
        health = client.get("/healthz").json()
        assert health["ok"] is False and health["pending_rows"] == 1
        assert "store worker" in health["last_flush_error"]
    finally:
        holder.kill()
        holder.wait()
    wait_for(lambda: client.get("/healthz").status_code == 200, timeout=40)  # after the back-off
    health = client.get("/healthz").json()
    assert (health["pending_rows"], health["rows_written"], health["last_flush_error"]) == (0, 2, None)
