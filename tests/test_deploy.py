"""deploy/: Debian's nginx with the deploy site in front of two `aipipe serve` replicas (streams
pass unbuffered, the relay logs the client's address, bodies over the limit are refused); the
systemd unit passes `systemd-analyze verify` and matches the relay's graceful shutdown; the
container and compose files agree with the rest. (The container is not built here: no engine.)"""

from __future__ import annotations

import json
import re
import shutil
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from itertools import pairwise
from pathlib import Path

import httpx
import pytest
import yaml

from relay.auth.tokens import issue_token
from relay.settings import Settings, load_settings
from testkit.fakes.server import serve_asgi
from testkit.fakes.upstream import DEFAULT_KEYS, create_fake_upstream
from testkit.nginx import run_nginx
from testkit.relay_process import RelayProcess, clean_env, free_port
from testkit.tls import make_certificates
from tests.conftest import SECRET, provider_part

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
CLIENT = "127.0.0.2"  # the test's client connects from here; nginx reaches the relays from 127.0.0.1
CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "tell me a story"}]}
MB = 1024 * 1024


@pytest.fixture(scope="module")
def upstream_url() -> Iterator[str]:
    with serve_asgi(create_fake_upstream()) as url:
        yield url


def _log_lines(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines() if x.startswith("{")]


def test_nginx_in_front_of_two_replicas(tmp_path: Path, upstream_url: str) -> None:
    """Through nginx (TLS) to two replicas: a stream's chunks arrive spread in time as the provider
    sends them; the relays log the client's own address, not nginx's nor a forged one; both
    replicas serve; a body over the limit is refused by nginx in the relay's JSON envelope; plain
    http moves to https; /metrics is not served to the outside."""
    certs = make_certificates(tmp_path / "tls", ["127.0.0.1", "aipipe.example.com"])
    policy = tmp_path / "aipipe.toml"
    policy.write_text('[budget]\n"*" = { limit = 10.0, days = 7 }\n')
    relays: list[RelayProcess] = []
    try:
        for n in (1, 2):
            env = clean_env(
                AIPIPE_SECRET=SECRET, AIPIPE_CONFIG=str(policy), AIPIPE_DATA_DIR=str(tmp_path / f"r{n}"),
                OPENAI_API_KEY=DEFAULT_KEYS["openai"], AIPIPE_OPENAI_BASE=f"{upstream_url}/openai",
                AIPIPE_TRUSTED_PROXIES="127.0.0.1",
            )
            relays.append(RelayProcess(env, cwd=tmp_path, log=tmp_path / f"relay{n}.log"))
        for relay in relays:
            relay.wait_ready()
        token = issue_token(load_settings(env, cwd=tmp_path), "ann@example.com")
        https_port, http_port = free_port(), free_port()
        with run_nginx(tmp_path / "nginx", [r.port for r in relays], certs.cert, certs.key,
                       https_port, http_port) as site:
            context = ssl.create_default_context(cafile=str(certs.ca))
            transport = httpx.HTTPTransport(local_address=CLIENT, verify=context)
            base = f"https://127.0.0.1:{https_port}"
            headers = {"authorization": f"Bearer {token}"}
            with httpx.Client(transport=transport, base_url=base, headers=headers, timeout=30) as http:
                # A stream, 8 content chunks 250 ms apart, with a forged X-Forwarded-For.
                arrivals: list[float] = []
                text = b""
                slow = {"x-fake": "slow", "x-fake-chunks": "8", "x-fake-delay": "250",
                        "x-forwarded-for": "6.6.6.6", "origin": "https://stream.test"}
                sent = time.monotonic()
                with http.stream("POST", "/openai/v1/chat/completions", json={**CHAT, "stream": True},
                                 headers=slow) as r:
                    assert r.status_code == 200
                    for chunk in r.iter_raw():
                        arrivals.append(time.monotonic())
                        text += chunk
                assert provider_part(text.decode()).endswith("data: [DONE]")
                assert arrivals[0] - sent < 1.0  # the first chunk did not wait for the last
                assert arrivals[-1] - arrivals[0] >= 1.2  # ~1.75 s of chunks, not one burst
                assert sum(b - a >= 0.1 for a, b in pairwise(arrivals)) >= 5

                for _ in range(6):  # both replicas take calls
                    assert http.post("/openai/v1/chat/completions", json=CHAT).status_code == 200
                # A body of 300 KB passes (the relay reads it), as uploads do.
                big = {**CHAT, "messages": [{"role": "user", "content": "word " * 60_000}]}
                assert http.post("/openai/v1/chat/completions", json=big).status_code == 200
                assert http.get("/metrics").status_code == 404

            limit = Settings(secret=SECRET, data_dir=tmp_path).max_body_bytes  # the relay's default
            refused = _raw_tls_post(https_port, context, content_length=limit + MB)
            assert refused.startswith(b"HTTP/1.1 413 ")
            head, _, body = refused.partition(b"\r\n\r\n")
            assert b"access-control-allow-origin: *" in head.lower()
            assert json.loads(body)["error"]["code"] == "payload_too_large"

            redirect = httpx.get(f"http://127.0.0.1:{http_port}/usage",
                                 headers={"host": "aipipe.example.com"})
            assert redirect.status_code == 301
            assert redirect.headers["location"] == "https://aipipe.example.com/usage"
            errors = [ln for ln in site.error_log.read_text().splitlines()
                      if "[error]" in ln and "too large body" not in ln]  # that one was ours
            assert errors == []
    finally:
        for relay in relays:
            relay.stop(timeout=30)
    lines = [line for n in (1, 2) for line in _log_lines(tmp_path / f"relay{n}.log") if "method" in line]
    calls = [line for line in lines if line["path"] == "/openai/v1/chat/completions"]
    assert len(calls) == 8
    assert {line["client"] for line in calls} == {CLIENT}  # not nginx's 127.0.0.1, not 6.6.6.6
    streamed = [line for line in calls if line.get("streamed")]
    assert len(streamed) == 1 and streamed[0]["status"] == 200
    per_replica = [sum(1 for line in _log_lines(tmp_path / f"relay{n}.log") if line.get("provider"))
                   for n in (1, 2)]
    assert all(count >= 2 for count in per_replica), per_replica
    assert not any(line["status"] == 413 for line in lines)  # nginx refused it; no relay saw it


def _raw_tls_post(port: int, context: ssl.SSLContext, content_length: int) -> bytes:
    """A POST that declares a body larger than the limit and sends none of it: nginx must answer
    from the headers alone."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw, \
            context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
        tls.sendall(
            b"POST /openai/v1/chat/completions HTTP/1.1\r\nHost: aipipe.example.com\r\n"
            b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % content_length
        )
        answer = b""
        while chunk := tls.recv(65536):
            answer += chunk
            if b"\r\n\r\n" in answer and answer.rstrip().endswith(b"}"):
                break
        return answer


def test_site_body_limit_is_the_relays() -> None:
    """nginx's client_max_body_size is the relay's default AIPIPE_MAX_BODY_MB."""
    site = (DEPLOY / "nginx" / "aipipe.conf").read_text()
    [size] = re.findall(r"client_max_body_size (\d+)m;", site)
    assert int(size) * MB == Settings(secret=SECRET, data_dir=Path(".")).max_body_bytes


# -- systemd ----------------------------------------------------------------------------------
UNIT = DEPLOY / "systemd" / "aipipe@.service"


def _unit_values() -> dict[str, str]:
    return dict(
        (k.strip(), v.strip())
        for k, _, v in (ln.partition("=") for ln in UNIT.read_text().splitlines())
        if v and not k.startswith("#")
    )


def test_systemd_unit_verifies(tmp_path: Path) -> None:
    """`systemd-analyze verify` finds nothing to say about the unit (with ExecStart pointed at
    this checkout's `aipipe`, since /opt/aipipe does not exist here)."""
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed (it ships with systemd)")
    aipipe = Path(sys.executable).parent / "aipipe"
    assert aipipe.exists()
    text = UNIT.read_text()
    assert "/opt/aipipe/.venv/bin/aipipe " in text
    instance = tmp_path / "aipipe@8001.service"
    instance.write_text(text.replace("/opt/aipipe/.venv/bin/aipipe ", f"{aipipe} "))
    result = subprocess.run([analyze, "verify", str(instance)], capture_output=True, text=True)
    complaints = [ln for ln in (result.stdout + result.stderr).splitlines() if ln.strip()]
    assert result.returncode == 0 and complaints == [], complaints


def test_systemd_unit_matches_the_relays_shutdown() -> None:
    """SIGTERM (the relay's graceful stop) to the relay alone, with a stop timeout longer than its
    --grace plus the 5 s it gives cut calls and the last flush; reload is SIGHUP; not root."""
    values = _unit_values()
    grace = float(re.search(r"--grace (\d+)", values["ExecStart"]).group(1))  # type: ignore[union-attr]
    assert values["KillSignal"] == "SIGTERM" and values["KillMode"] == "mixed"
    assert float(values["TimeoutStopSec"]) >= grace + 5 + 10
    assert values["ExecReload"] == "/bin/kill -HUP $MAINPID"
    assert values["User"] not in ("", "root") and values["NoNewPrivileges"] == "yes"
    assert "--port %i" in values["ExecStart"] and "--host 127.0.0.1" in values["ExecStart"]
    ports = re.findall(r"server 127\.0\.0\.1:(\d+)", (DEPLOY / "nginx" / "upstream.conf").read_text())
    assert len(ports) == 2  # nginx balances over two instances, aipipe@<port>


# -- container and compose (read, not run) -----------------------------------------------------
def test_container_and_compose_agree() -> None:
    """The image runs as a non-root user with the pages' npm runtime and the web dir set; compose
    runs PostgreSQL, N relays that trust only nginx's fixed address, and nginx with the same site
    files the nginx test runs; stop grace periods match the unit's."""
    docker = (DEPLOY / "Dockerfile").read_text()
    assert re.search(r"^USER aipipe$", docker, re.M) and "npm ci" in docker
    assert "COPY --from=pages /src/web/node_modules ./web/node_modules" in docker
    assert "AIPIPE_WEB_DIR=/opt/aipipe/web" in docker
    assert (ROOT / "web" / "package-lock.json").is_file()

    compose = yaml.safe_load((DEPLOY / "compose" / "compose.yaml").read_text())
    services = compose["services"]
    assert set(services) == {"postgres", "relay", "nginx"}
    relay, nginx = services["relay"], services["nginx"]
    assert relay["environment"]["AIPIPE_DATABASE_URL"].startswith("postgresql://")
    assert relay["environment"]["AIPIPE_TRUSTED_PROXIES"] == nginx["networks"]["edge"]["ipv4_address"]
    assert relay["build"]["dockerfile"] == "deploy/Dockerfile"
    assert relay["stop_grace_period"] == f"{_unit_values()['TimeoutStopSec']}s"
    for mount in nginx["volumes"]:
        source = mount.split(":")[0]
        assert (DEPLOY / "compose" / source).exists() or source == "./certs", source
