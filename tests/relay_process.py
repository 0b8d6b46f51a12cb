"""Run the real relay as its users do — `python -m relay serve` in a subprocess on a free port —
for tests that need the whole process (CLI, shutdown, browser)."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
OWN_VARS = ("ADMIN_EMAILS", "GOOGLE_CLIENT_ID")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def clean_env(**extra: str) -> dict[str, str]:
    """The process environment without any relay setting of the developer's, plus `extra`."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not (k.startswith("AIPIPE_") or k.endswith("_API_KEY") or k in OWN_VARS)
    }
    env["PYTHONPATH"] = str(ROOT)
    env.update(extra)
    return env


@contextlib.contextmanager
def serve_relay(
    work: Path, env: dict[str, str], *args: str, timeout: float = 30.0
) -> Iterator[str]:
    """`python -m relay serve --host 127.0.0.1 --port N *args` in `work`; yields its URL once
    /healthz answers; terminates it (then kills it if it hangs) at the end. Output goes to
    work/relay.log, shown if it fails to start."""
    port = free_port()
    log_path = work / "relay.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "relay", "serve", "--host", "127.0.0.1", "--port", str(port), *args],
            cwd=work, env=env, stdout=log, stderr=subprocess.STDOUT,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            _wait_until_up(url, proc, log_path, timeout)
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _wait_until_up(url: str, proc: subprocess.Popen, log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"relay exited with {proc.returncode}:\n{log.read_text()}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        time.sleep(0.1)
    raise RuntimeError(f"relay did not answer on {url}:\n{log.read_text()}")
