"""SIGHUP reloads the policy file — budgets, salts, admins — while requests keep flowing; a file
that cannot be used changes nothing and says why; /healthz shows which policy is in force."""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from starlette.testclient import TestClient

from relay.auth.tokens import issue_token
from relay.clock import utc_today
from relay.live_policy import LivePolicy
from relay.policy import Policy, load_policy
from relay.settings import load_settings
from relay.store import Store
from testkit.fakes.server import serve_asgi
from testkit.fakes.upstream import DEFAULT_KEYS, create_fake_upstream
from testkit.relay_process import RelayProcess, clean_env
from tests.conftest import SECRET, auth, make_settings

CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
FIRST = '[budget]\n"*" = { limit = 1.0, days = 7 }\n\n[salt]\n"ann@example.com" = "s1"\n'
SECOND = (
    'admins = ["boss@example.com"]\n\n[budget]\n"*" = { limit = 2.5, days = 7 }\n\n'
    '[salt]\n"ann@example.com" = "s2"\n'
)


def digest(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def wait_for(check: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)


class Traffic:
    """Requests in a loop from a few threads (chat calls and /usage) until stopped; keeps every
    status and every transport error."""

    def __init__(self, url: str, token: str, threads: int = 3):
        self.url, self.token = url, token
        self.stop = threading.Event()
        self.statuses: list[int] = []
        self.errors: list[str] = []
        self.threads = [threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(threads)]

    def __enter__(self) -> Traffic:
        for t in self.threads:
            t.start()
        wait_for(lambda: len(self.statuses) >= 10)
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(30)

    def _run(self, n: int) -> None:
        headers = {"authorization": f"Bearer {self.token}"}
        with httpx.Client(base_url=self.url, headers=headers, timeout=30) as http:
            while not self.stop.is_set():
                try:
                    if n % 2:
                        r = http.get("/usage")
                    else:
                        r = http.post("/openai/v1/chat/completions", json={**CHAT, "stream": n == 2})
                    self.statuses.append(r.status_code)
                except httpx.HTTPError as e:
                    self.errors.append(repr(e))


@pytest.fixture(scope="module")
def upstream_url() -> Iterator[str]:
    with serve_asgi(create_fake_upstream()) as url:
        yield url


def test_sighup_reloads_without_a_failed_request(tmp_path: Path, upstream_url: str) -> None:
    """Under steady traffic: SIGHUP after raising the budget → /usage reports the new limit with
    every request answered 200; the new salt revokes old tokens and the new admin is an admin. A
    broken file then changes nothing (same digest, same limit) and /healthz and the log say why."""
    policy = tmp_path / "aipipe.toml"
    policy.write_text(FIRST)
    env = clean_env(
        AIPIPE_SECRET=SECRET, AIPIPE_DATA_DIR=str(tmp_path / "data"), AIPIPE_CONFIG=str(policy),
        OPENAI_API_KEY=DEFAULT_KEYS["openai"], AIPIPE_OPENAI_BASE=f"{upstream_url}/openai",
    )
    settings = load_settings(env, cwd=tmp_path)
    bob, ann_old = issue_token(settings, "bob@example.com"), issue_token(settings, "ann@example.com")
    boss = issue_token(settings, "boss@example.com")
    relay = RelayProcess(env, cwd=tmp_path, log=tmp_path / "relay.log").wait_ready()
    try:
        http = httpx.Client(base_url=relay.url, timeout=30)
        health = http.get("/healthz").json()["policy"]
        assert (health["digest"], health["source"]) == (digest(FIRST), str(policy))
        assert health["reload_error"] is None
        assert http.get("/usage", headers=auth(bob)).json()["limit"] == 1.0
        assert http.get("/usage", headers=auth(ann_old)).status_code == 200
        assert http.get("/admin/users", headers=auth(boss)).status_code == 403

        with Traffic(relay.url, bob) as traffic:
            policy.write_text(SECOND)
            os.kill(relay.pid, signal.SIGHUP)
            wait_for(lambda: http.get("/healthz").json()["policy"]["digest"] == digest(SECOND))
            assert http.get("/usage", headers=auth(bob)).json()["limit"] == 2.5
            seen = len(traffic.statuses)
            wait_for(lambda: len(traffic.statuses) >= seen + 10)  # traffic kept flowing after it
        assert traffic.errors == []
        assert set(traffic.statuses) == {200}, sorted(set(traffic.statuses))

        revoked = http.get("/usage", headers=auth(ann_old))
        assert revoked.status_code == 401 and revoked.json()["error"]["code"] == "token_revoked"
        assert http.get("/admin/users", headers=auth(boss)).status_code == 200
        # A token issued now carries the new salt.
        fresh = http.get("/admin/token", params={"email": "ann@example.com"}, headers=auth(boss)).json()
        assert http.get("/usage", headers=auth(fresh["token"])).status_code == 200
        loaded_at = http.get("/healthz").json()["policy"]["loaded_at"]

        policy.write_text('[budget]\n"*" = { limit = "lots" }\n')
        os.kill(relay.pid, signal.SIGHUP)
        wait_for(lambda: http.get("/healthz").json()["policy"]["reload_error"] is not None)
        health = http.get("/healthz").json()["policy"]
        assert "limit 'lots' is not a number" in health["reload_error"]
        assert (health["digest"], health["loaded_at"]) == (digest(SECOND), loaded_at)
        assert http.get("/usage", headers=auth(bob)).json()["limit"] == 2.5
        assert http.get("/usage", headers=auth(fresh["token"])).status_code == 200

        policy.write_text(SECOND.replace("2.5", "3"))  # fixed: the next SIGHUP takes it
        os.kill(relay.pid, signal.SIGHUP)
        wait_for(lambda: http.get("/healthz").json()["policy"]["reload_error"] is None)
        assert http.get("/usage", headers=auth(bob)).json()["limit"] == 3.0
        http.close()
    finally:
        assert relay.stop() in (0, -signal.SIGTERM)
    lines = [json.loads(x) for x in relay.output().splitlines() if x.startswith("{")]
    messages = [x.get("message", "") for x in lines]
    assert any(m.startswith("policy reload failed") and "lots" in m for m in messages)
    assert sum(m.startswith("policy reloaded from") for m in messages) == 2


def test_longer_window_reads_older_days(make_client: Callable[..., TestClient], tmp_path: Path) -> None:
    """Spend older than the start-up policy's longest window is read from the ledger when a
    reload lengthens the window: the budget counts it at once."""
    settings = make_settings(tmp_path)
    old_day = utc_today() - timedelta(days=20)
    store = Store(settings.db_path).open(background=False)
    store.set_day_cost("ann@example.com", old_day, Decimal("0.40"))
    store.close()
    path = tmp_path / "aipipe.toml"
    path.write_text('[budget]\n"*" = { limit = 1.0, days = 7 }\n')
    client = make_client(make_settings(tmp_path, config_path=path, policy=load_policy(path)))
    token = issue_token(settings, "ann@example.com")
    assert client.get("/usage", headers=auth(token)).json()["cost"] == 0
    path.write_text('[budget]\n"*" = { limit = 1.0, days = 30 }\n')
    assert client.app.state.policy.reload()
    usage = client.get("/usage", headers=auth(token)).json()
    assert (usage["days"], usage["cost"]) == (30, 0.4)


def test_reload_without_a_file_keeps_the_built_in_policy() -> None:
    """A relay started without AIPIPE_CONFIG (e.g. --dev) has nothing to reload: it says so."""
    live = LivePolicy(Policy())
    assert not live.reload()
    assert "AIPIPE_CONFIG" in (live.last_error or "")
    assert live.describe()["digest"] == "built-in"


def test_a_failing_listener_leaves_the_old_policy(tmp_path: Path) -> None:
    """If what must happen before the swap fails (the store cannot read the older days), the old
    policy stays whole and the reason is kept."""
    path = tmp_path / "p.toml"
    path.write_text('[budget]\n"*" = { limit = 1.0, days = 7 }\n')
    live = LivePolicy.start(make_settings(tmp_path, config_path=path))
    before = live.loaded

    def broken(_: Policy) -> None:
        raise RuntimeError("ledger unreachable")

    live.listeners.append(broken)
    path.write_text('[budget]\n"*" = { limit = 9.0, days = 30 }\n')
    assert not live.reload()
    assert live.loaded is before and live.budget_for("x@y.z").limit == 1
    assert "ledger unreachable" in (live.last_error or "")


def test_config_and_pages_show_the_reloaded_default_budget(
        make_client: Callable[..., TestClient], tmp_path: Path) -> None:
    """After a reload, /config.json and the config embedded in every page tell visitors the
    default budget in force (the home page says "$2.50 per user over 30 days"), not the one the
    relay started with."""
    path = tmp_path / "aipipe.toml"
    path.write_text('[budget]\n"*" = { limit = 1.0, days = 7 }\n')
    client = make_client(make_settings(tmp_path, config_path=path, policy=load_policy(path)))
    assert client.get("/config.json").json()["budget"] == {"limit": "1", "days": 7}
    path.write_text('[budget]\n"*" = { limit = 2.5, days = 30 }\n')
    assert client.app.state.policy.reload()
    assert client.get("/config.json").json()["budget"] == {"limit": "2.5", "days": 30}
    for page in ("/", "/login", "/scratchpad"):
        html = client.get(page).text
        embedded = re.search(r'id="aipipe-config">(.*?)</script>', html)
        assert embedded, page
        assert json.loads(embedded.group(1))["budget"] == {"limit": "2.5", "days": 30}, page
