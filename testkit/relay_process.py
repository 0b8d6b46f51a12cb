"""Run the real relay as its users do — `python -m relay serve` in a subprocess on a free port —
for tests and benchmarks that need the whole process (CLI, shutdown, browser, load)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
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


def stop_process(proc: subprocess.Popen, timeout: float = 10) -> None:
    """SIGTERM, then SIGKILL if it outlives `timeout` seconds."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


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


class RelayProcess:
    """`python -m relay serve --host 127.0.0.1 --port N *args`, started at once, in its own
    process group (as under a service manager). `prefix` goes before the command (e.g. taskset);
    output goes to `log` (a path) or a temporary file, shown if it fails to start."""

    def __init__(
        self,
        env: dict[str, str],
        *args: str,
        cwd: Path | None = None,
        port: int | None = None,
        log: Path | None = None,
        prefix: tuple[str, ...] = (),
    ):
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log
        # The child keeps its own copy of the descriptor; a temporary file lives as long as we do.
        self.log = log.open("w+b") if log else tempfile.TemporaryFile()  # noqa: SIM115
        command = [sys.executable, "-m", "relay", "serve", "--host", "127.0.0.1", "--port", str(self.port)]
        self.proc = subprocess.Popen(
            [*prefix, *command, *args],
            env=env, cwd=cwd or env.get("AIPIPE_DATA_DIR"), stdout=self.log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def wait_ready(self, timeout: float = 30) -> RelayProcess:
        """Return once /healthz answers 200; raise (with the relay's output) if it exits or
        does not answer in `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"relay exited with {self.proc.returncode}:\n{self.output()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return self
            time.sleep(0.05)
        self.kill()
        raise RuntimeError(f"relay did not answer on {self.url}:\n{self.output()}")

    def output(self) -> str:
        self.log.flush()
        self.log.seek(0)
        return self.log.read().decode(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        """Send `sig` (SIGTERM: a graceful stop) and wait; kill it if it outlives `timeout`."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return self.proc.wait()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@contextlib.contextmanager
def serve_relay(
    work: Path, env: dict[str, str], *args: str, timeout: float = 30.0
) -> Iterator[str]:
    """A relay in `work` (its output in work/relay.log) for the length of a `with` block:
    yields its URL once /healthz answers; stops it at the end."""
    relay = RelayProcess(env, *args, cwd=work, log=work / "relay.log")
    try:
        relay.wait_ready(timeout)
        yield relay.url
    finally:
        relay.stop(timeout=10)
