"""A throwaway PostgreSQL server for tests and benchmarks: Debian's server binaries, a cluster made
with `initdb` in a temporary directory, on a free port; or the server `AIPIPE_TEST_DATABASE_URL`
names, when set (then each `database()` is a fresh database on it).

PostgreSQL refuses to run as root (CI runs as root): the cluster then belongs to the unprivileged
`postgres` system user, and the server is started and stopped through `su`.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from testkit.relay_process import free_port

BIN_DIRS = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)  # newest first
SYSTEM_USER = "postgres"


class PostgresUnavailable(RuntimeError):
    """No server binaries and no AIPIPE_TEST_DATABASE_URL: `scripts/setup.sh` installs them."""


def _bin(name: str) -> str:
    for folder in BIN_DIRS:
        if (folder / name).exists():
            return str(folder / name)
    found = shutil.which(name)
    if found is None:
        raise PostgresUnavailable(
            f"PostgreSQL's {name} is not installed: run scripts/setup.sh (apt-get install postgresql) "
            "or set AIPIPE_TEST_DATABASE_URL"
        )
    return found


class PostgresServer:
    """One cluster in `root` (a temp dir), listening on 127.0.0.1:`port` and a socket in `root`.
    `fsync=False` (the default) trades durability across a machine crash for test speed; a
    restart (`stop()` then `start()`) keeps everything either way."""

    def __init__(self, root: Path | None = None, *, port: int | None = None, fsync: bool = False):
        self.root = root or Path(tempfile.mkdtemp(prefix="aipipe-pg-"))
        self.port = port or free_port()
        self.fsync = fsync
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self._as_root = os.geteuid() == 0

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, argv: list[str], check: bool = True) -> subprocess.CompletedProcess[str]:
        if self._as_root:  # PostgreSQL will not run as root: run it as its own system user
            command = " ".join(_quote(a) for a in argv)
            argv = ["su", SYSTEM_USER, "-s", "/bin/bash", "-c", command]
        return subprocess.run(argv, capture_output=True, text=True, check=check, timeout=120)

    def init(self) -> PostgresServer:
        if self._as_root:
            shutil.chown(self.root, SYSTEM_USER, SYSTEM_USER)
        self.root.chmod(0o700)
        self._run([_bin("initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres", "-E", "UTF8"])
        return self

    def start(self) -> PostgresServer:
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 "
            f"-c fsync={'on' if self.fsync else 'off'} -c max_connections=200"
        )
        self._run([_bin("pg_ctl"), "-D", str(self.data), "-o", options, "-l", str(self.log), "-w", "start"])
        return self

    def stop(self, mode: str = "fast") -> None:
        self._run([_bin("pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop"], check=False)

    def pid(self) -> int | None:
        """The postmaster's process id, while it runs."""
        try:
            return int((self.data / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def kill(self) -> None:
        """SIGKILL the postmaster (a crash, not a shutdown); its backends exit when they notice."""
        pid = self.pid()
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def remove(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)

    def output(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""


def _quote(arg: str) -> str:
    return "'" + arg.replace("'", "'\\''") + "'"


def create_database(admin_url: str, name: str | None = None) -> str:
    """A new, empty database on the server `admin_url` reaches; returns its URL."""
    import asyncio

    import asyncpg

    name = name or f"aipipe_{uuid.uuid4().hex[:12]}"

    async def create() -> None:
        con = await asyncpg.connect(admin_url)
        try:
            await con.execute(f'CREATE DATABASE "{name}"')
        finally:
            await con.close()

    asyncio.run(create())
    parts = urlsplit(admin_url)
    return urlunsplit(parts._replace(path=f"/{name}"))


@contextlib.contextmanager
def postgres_server(*, fsync: bool = False) -> Iterator[PostgresServer | None]:
    """A running throwaway server for a `with` block (removed at the end), or None when
    AIPIPE_TEST_DATABASE_URL names a server to use instead."""
    if os.environ.get("AIPIPE_TEST_DATABASE_URL"):
        yield None
        return
    server = PostgresServer(fsync=fsync).init()
    try:
        server.start()
        yield server
    finally:
        server.remove()


def wait_until(condition, timeout: float, what: str, interval: float = 0.05):  # type: ignore[no-untyped-def]
    """Poll `condition()` until it returns something true; raise naming `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)
