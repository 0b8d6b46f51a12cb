"""Scale-out on real processes: `aipipe serve` replicas (and `--workers`) sharing one PostgreSQL
database hold a budget together, survive a replica killed mid-stream, and fail closed - then
recover with nothing admitted lost - when PostgreSQL restarts under load."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import threading
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from bench.run import children
from relay.auth.tokens import issue_token
from relay.settings import load_settings
from testkit.fakes.server import serve_asgi
from testkit.fakes.upstream import create_fake_upstream
from testkit.postgres import PostgresServer, create_database, wait_until
from testkit.relay_process import RelayProcess, clean_env
from tests.test_pg_store import SLOW, STREAM, scalar

SECRET = "scale-out-secret-0123456789abcdef012345678"
TIGHT, ROOMY = "tight@example.com", "roomy@example.com"
LIMIT, WORTH = Decimal("0.002"), Decimal("0.0004")  # the fake's claude-3.5-haiku stream below
POLICY = f'[budget]\n"{TIGHT}" = {{ limit = 0.002, days = 1 }}\n"*" = {{ limit = 1000, days = 1 }}\n'
CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture
def upstream() -> Iterator[tuple[str, Any]]:
    app = create_fake_upstream()
    with serve_asgi(app) as url:
        yield url, app


def env_for(tmp: Path, upstream: str, database_url: str, **extra: str) -> dict[str, str]:
    (tmp / "data").mkdir(parents=True, exist_ok=True)
    (tmp / "aipipe.toml").write_text(POLICY)
    return clean_env(
        AIPIPE_SECRET=SECRET,
        AIPIPE_DATA_DIR=str(tmp / "data"),
        AIPIPE_CONFIG=str(tmp / "aipipe.toml"),
        AIPIPE_DATABASE_URL=database_url,
        AIPIPE_FLUSH_SECONDS="0.2",
        OPENAI_API_KEY="sk-test-openai",
        OPENROUTER_API_KEY="sk-or-test",
        AIPIPE_OPENAI_BASE=f"{upstream}/openai",
        AIPIPE_OPENROUTER_BASE=f"{upstream}/openrouter",
        **extra,
    )


def token(env: dict[str, str], email: str) -> str:
    return issue_token(load_settings(env, cwd=Path(env["AIPIPE_DATA_DIR"])), email)


@contextlib.contextmanager
def relays(env: dict[str, str], count: int, *args: str) -> Iterator[list[RelayProcess]]:
    started = [RelayProcess(env, *args) for _ in range(count)]  # they start (and migrate) together
    try:
        for relay in started:
            relay.wait_ready(60)
        yield started
    finally:
        for relay in started:
            relay.stop(timeout=20)


async def _call(client: httpx.AsyncClient, url: str, tok: str, body: dict, extra: dict) -> tuple:
    headers = {"authorization": f"Bearer {tok}", **extra}
    async with client.stream("POST", url, json=body, headers=headers) as r:
        text = (await r.aread()).decode()
        return r.status_code, text


def spread(urls: list[str], tok: str, n: int, body: dict = STREAM, extra: dict = SLOW) -> list[tuple]:
    """`n` calls at once, dealt round-robin over the relays."""

    async def main() -> list[tuple]:
        async with httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=n + 5)) as c:
            path = "/openrouter/v1/chat/completions" if body is STREAM else "/openai/v1/chat/completions"
            return await asyncio.gather(
                *(_call(c, urls[i % len(urls)] + path, tok, body, extra) for i in range(n))
            )

    return asyncio.run(main())


def test_three_replicas_hold_one_budget(tmp_path: Path, upstream, pg_url: str) -> None:
    """Three replicas on one database, 30 concurrent streams spread over them against $0.002:
    spend stays within the budget; /usage on every replica shows spend made through
    another at once; every upstream call has its ledger row."""
    up, app = upstream
    env = env_for(tmp_path, up, pg_url)
    with relays(env, 3) as three:
        urls = [r.url for r in three]
        results = spread(urls, token(env, TIGHT), 30)
        roomy = token(env, ROOMY)
        r = httpx.post(f"{urls[0]}/openai/v1/chat/completions", json=CHAT,
                       headers={"authorization": f"Bearer {roomy}"})
        assert r.status_code == 200
        cost = Decimal(r.headers["x-aipipe-cost"])
        for url in urls[1:]:  # no waiting: the settle committed before the answer was sent
            usage = httpx.get(f"{url}/usage", headers={"authorization": f"Bearer {roomy}"}).json()
            assert Decimal(str(usage["cost"])) == cost
    ok = sum(1 for status, _ in results if status == 200)
    assert all(status in (200, 429) for status, _ in results)
    spent = scalar(pg_url, "SELECT sum(cost) FROM daily WHERE email = $1", TIGHT)
    # Worst cases are bounded (the last admitted call is capped to what was left): spend is what
    # the provider billed, never over the limit, and the budget is used up to less than a call.
    billed = sum(Decimal(str(b["cost"])) for b in app.state.billed if b["model"] == STREAM["model"])
    assert spent == billed and LIMIT - WORTH < spent <= LIMIT and ok >= 5
    forwarded = scalar(pg_url, "SELECT count(*) FROM requests WHERE outcome <> 'refused'")
    calls = [r for r in app.state.received if r["path"].endswith("/chat/completions")]
    assert forwarded == len(calls) == ok + 1  # (each replica also fetched OpenRouter's prices)
    assert scalar(pg_url, "SELECT count(*) FROM holds") == 0


def test_a_replica_killed_mid_stream(tmp_path: Path, upstream, pg_url: str) -> None:
    """SIGKILL one replica mid-stream: the other keeps serving; the killed one's reservation (the
    user's whole budget) expires with its lease and the user can spend again; the killed replica's
    rows older than its flush interval are in the ledger."""
    up, _ = upstream
    env = env_for(tmp_path, up, pg_url, AIPIPE_LEASE_SECONDS="2")
    tight, roomy = token(env, TIGHT), token(env, ROOMY)
    with relays(env, 2) as (doomed, survivor):
        for i in range(3):
            r = httpx.post(f"{doomed.url}/openai/v1/chat/completions", json=CHAT,
                           headers={"authorization": f"Bearer {roomy}", "origin": f"early-{i}"})
            assert r.status_code == 200
        wait_until(lambda: scalar(pg_url, "SELECT count(*) FROM requests") == 3, 5, "the flush")
        first = threading.Event()

        def stream() -> None:  # asks for 100k tokens: its hold takes the whole $0.002
            body = {**CHAT, "stream": True, "max_tokens": 100_000}
            headers = {"authorization": f"Bearer {tight}", "x-fake": "slow",
                       "x-fake-chunks": "1000", "x-fake-delay": "20"}
            with contextlib.suppress(httpx.HTTPError), httpx.stream(
                "POST", f"{doomed.url}/openai/v1/chat/completions", json=body, headers=headers,
                timeout=30,
            ) as r:
                for _ in r.iter_bytes():
                    first.set()
            first.set()

        thread = threading.Thread(target=stream, daemon=True)
        thread.start()
        assert first.wait(10)
        doomed.stop(signal.SIGKILL)
        thread.join(10)
        chat = f"{survivor.url}/openai/v1/chat/completions"
        held = httpx.post(chat, json=CHAT, headers={"authorization": f"Bearer {tight}"})
        assert held.status_code == 429  # the dead replica's hold still counts...
        assert httpx.post(chat, json=CHAT, headers={"authorization": f"Bearer {roomy}"}).status_code == 200

        def admitted() -> bool:  # ...until its lease ends
            r = httpx.post(chat, json=CHAT, headers={"authorization": f"Bearer {tight}"})
            return r.status_code == 200

        wait_until(admitted, 15, "the killed replica's reservation to expire", interval=0.25)
    origins = scalar(pg_url, "SELECT string_agg(origin, ',' ORDER BY origin) FROM requests "
                             "WHERE origin LIKE 'early-%'")
    assert origins == "early-0,early-1,early-2"


def test_postgres_restart_under_load(tmp_path: Path, upstream) -> None:
    """PostgreSQL stops under load: budgeted calls get 503 in the envelope, model lists still
    answer, /healthz says why; once it is back calls succeed again and every call that was
    answered 200 - including a stream admitted before the stop that ended during it - has its row."""
    up, _ = upstream
    server = PostgresServer().init().start()  # its own server: this test stops it
    try:
        url = create_database(server.url)
        env = env_for(tmp_path, up, url)
        roomy = {"authorization": f"Bearer {token(env, ROOMY)}"}
        answered: list[str] = []
        outcomes: dict[int, int] = {}
        stop = threading.Event()

        def load() -> None:
            n = 0
            with httpx.Client(timeout=30) as client:
                while not stop.is_set():
                    origin = f"load-{n}"
                    n += 1
                    r = client.post(f"{relay.url}/openai/v1/chat/completions", json=CHAT,
                                    headers={**roomy, "origin": origin})
                    outcomes[r.status_code] = outcomes.get(r.status_code, 0) + 1
                    if r.status_code == 200:
                        answered.append(origin)
                    elif r.status_code == 503:
                        assert r.json()["error"]["code"] == "store_unavailable"

        with relays(env, 1) as (relay,):
            stream_done = threading.Event()

            def stream() -> None:
                headers = {**roomy, "origin": "long-stream", "x-fake": "slow",
                           "x-fake-chunks": "60", "x-fake-delay": "50"}
                body = {**CHAT, "stream": True}
                with httpx.stream("POST", f"{relay.url}/openai/v1/chat/completions", json=body,
                                  headers=headers, timeout=30) as r:
                    assert r.status_code == 200
                    r.read()
                answered.append("long-stream")
                stream_done.set()

            workers = [threading.Thread(target=load, daemon=True) for _ in range(4)]
            workers.append(threading.Thread(target=stream, daemon=True))
            for w in workers:
                w.start()
            wait_until(lambda: len(answered) > 20, 20, "calls before the stop")
            server.stop("fast")
            wait_until(lambda: outcomes.get(503, 0) > 5, 20, "503s while the database is down")
            health = httpx.get(f"{relay.url}/healthz")
            assert health.status_code == 503 and health.json()["database_error"]
            models = httpx.get(f"{relay.url}/openai/v1/models", headers=roomy)
            assert models.status_code == 200
            assert stream_done.wait(20)  # admitted before the stop, ended while it was down
            server.start()
            before = len(answered)
            wait_until(lambda: len(answered) > before + 20, 30, "calls to succeed again")
            stop.set()
            for w in workers:
                w.join(30)
            wait_until(lambda: httpx.get(f"{relay.url}/healthz").json()["pending_rows"] == 0, 10,
                       "the buffered rows to be written")
        recorded = scalar(url, "SELECT array_agg(origin) FROM requests WHERE status = 200")
        assert set(answered) <= set(recorded)
        assert outcomes.get(503, 0) > 0 and outcomes.get(200, 0) > 40
    finally:
        server.remove()


def test_workers_share_one_budget(tmp_path: Path, upstream, pg_url: str) -> None:
    """`aipipe serve --workers 2`: two processes answer on one port and hold one budget."""
    up, up_app = upstream
    env = env_for(tmp_path, up, pg_url)
    with relays(env, 1, "--workers", "2") as (relay,):
        wait_until(lambda: len(_workers(relay.pid)) == 2, 30, "two worker processes")
        results = spread([relay.url], token(env, TIGHT), 30)
        backends = scalar(pg_url, "SELECT count(DISTINCT pid) FROM pg_stat_activity "
                                  "WHERE application_name = 'aipipe'")
        assert backends >= 2  # each worker has its own pool
    ok = sum(1 for status, _ in results if status == 200)
    spent = scalar(pg_url, "SELECT sum(cost) FROM daily WHERE email = $1", TIGHT)
    billed = sum(Decimal(str(b["cost"])) for b in up_app.state.billed if b["model"] == STREAM["model"])
    assert spent == billed and LIMIT - WORTH < spent <= LIMIT and ok >= 5


def _workers(pid: int) -> list[int]:
    """The supervisor's worker processes (not multiprocessing's resource tracker)."""
    found = []
    for child in children(pid):
        with contextlib.suppress(OSError):
            if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes():
                found.append(child)
    return found


def test_workers_refuse_the_duckdb_store(tmp_path: Path) -> None:
    """`--workers 2` without AIPIPE_DATABASE_URL stops at once and says what to set."""
    env = clean_env(AIPIPE_SECRET=SECRET, AIPIPE_DATA_DIR=str(tmp_path / "data"))
    relay = RelayProcess(env, "--workers", "2", cwd=tmp_path)
    assert relay.proc.wait(30) == 2
    assert "AIPIPE_DATABASE_URL" in relay.output()


def test_sighup_to_a_workers_supervisor_loads_the_new_policy(tmp_path: Path, upstream, pg_url: str) -> None:
    """`--workers 2`: SIGHUP to the serving process (what `systemctl reload` sends) replaces the
    workers one by one; each new one reads the policy file, so every answer after the reload
    shows the new limit, and a broken file leaves the workers serving the policy in force."""
    up, _ = upstream
    env = env_for(tmp_path, up, pg_url)
    config = Path(env["AIPIPE_CONFIG"])
    tight = {"authorization": f"Bearer {token(env, TIGHT)}"}
    with relays(env, 1, "--workers", "2") as (relay,):
        wait_until(lambda: len(_workers(relay.pid)) == 2, 30, "two worker processes")
        before = set(_workers(relay.pid))
        assert httpx.get(f"{relay.url}/usage", headers=tight).json()["limit"] == 0.002
        config.write_text(POLICY.replace("limit = 0.002", "limit = 0.5"))
        os.kill(relay.pid, signal.SIGHUP)
        wait_until(lambda: before.isdisjoint(_workers(relay.pid)) and len(_workers(relay.pid)) == 2,
                   60, "both workers replaced")
        limits = {httpx.get(f"{relay.url}/usage", headers=tight).json()["limit"] for _ in range(8)}
        assert limits == {0.5}
        config.write_text("[budget\nbroken")
        serving = set(_workers(relay.pid))
        os.kill(relay.pid, signal.SIGHUP)
        # The replacement dies reading the file; the supervisor says so and keeps the worker.
        wait_until(lambda: "aborting the restart" in relay.output(), 60, "the restart to be abandoned")
        assert httpx.get(f"{relay.url}/usage", headers=tight).json()["limit"] == 0.5
        assert len(_workers(relay.pid)) == 2 and serving & set(_workers(relay.pid))
