"""Debian's nginx running the site in deploy/nginx/ for a test: the same files, with only what
must differ on a test machine rewritten — listen addresses (loopback, free ports), certificate
paths (a test CA's), the replicas' ports, and the include paths. Each rewrite must match, so a
change to the deploy files that the test would no longer cover fails loudly."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from testkit.relay_process import stop_process

DEPLOY = Path(__file__).resolve().parent.parent / "deploy" / "nginx"
INCLUDES = "/etc/nginx/aipipe/"


@dataclass
class NginxSite:
    https_port: int
    http_port: int
    error_log: Path
    access_log: Path


def _sub(pattern: str, replacement: str, text: str, what: str, count: int = 0) -> str:
    out, n = re.subn(pattern, replacement, text, count=count, flags=re.M)
    if not n:
        raise AssertionError(f"deploy/nginx changed: no {what} to rewrite for the test ({pattern!r})")
    return out


def render(work: Path, replicas: list[int], cert: Path, key: Path, https_port: int, http_port: int) -> Path:
    """Copy the deploy files into `work` with the test's addresses; returns the main config."""
    work.mkdir(parents=True, exist_ok=True)
    upstream = (DEPLOY / "upstream.conf").read_text()
    lines = "\n".join(f"    server 127.0.0.1:{port} max_fails=1 fail_timeout=5s;" for port in replicas)
    upstream = _sub(r"^\s*server 127\.0\.0\.1:\d+ .*;\n(?:\s*server 127\.0\.0\.1:\d+ .*;\n)*", lines + "\n",
                    upstream, "replica server lines")
    (work / "upstream.conf").write_text(upstream)
    shutil.copy(DEPLOY / "proxy.conf", work / "proxy.conf")
    site = (DEPLOY / "aipipe.conf").read_text()
    site = _sub(re.escape(INCLUDES), str(work) + "/", site, "include path")
    site = _sub(r"^\s*listen \[::\].*\n", "", site, "IPv6 listen lines")  # tests bind loopback only
    site = _sub(r"listen 443 ssl", f"listen 127.0.0.1:{https_port} ssl", site, "https listen")
    site = _sub(r"listen 80;", f"listen 127.0.0.1:{http_port};", site, "http listen")
    site = _sub(r"ssl_certificate\s+\S+;", f"ssl_certificate {cert};", site, "certificate path")
    site = _sub(r"ssl_certificate_key\s+\S+;", f"ssl_certificate_key {key};", site, "key path")
    (work / "aipipe.conf").write_text(site)
    for sub in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (work / sub).mkdir(exist_ok=True)
    # As root nginx would run its workers as `nobody`, who cannot enter pytest's 0700 temp dirs.
    user = "user root;\n" if os.geteuid() == 0 else ""
    main = work / "nginx.conf"
    main.write_text(
        f"{user}daemon off;\nworker_processes 1;\npid {work}/nginx.pid;\n"
        f"error_log {work}/error.log info;\n"
        "events { worker_connections 256; }\n"
        "http {\n"
        f"    access_log {work}/access.log;\n"
        f"    client_body_temp_path {work}/body;\n    proxy_temp_path {work}/proxy;\n"
        f"    fastcgi_temp_path {work}/fastcgi;\n    uwsgi_temp_path {work}/uwsgi;\n"
        f"    scgi_temp_path {work}/scgi;\n"
        "    default_type application/octet-stream;\n"
        f"    include {work}/aipipe.conf;\n"
        "}\n"
    )
    return main


def nginx_binary() -> str | None:
    return shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if os.access(p, os.X_OK)), None
    )


@contextlib.contextmanager
def run_nginx(work: Path, replicas: list[int], cert: Path, key: Path, https_port: int, http_port: int
              ) -> Iterator[NginxSite]:
    """nginx in the foreground (its own process), until the block ends."""
    binary = nginx_binary()
    if binary is None:
        raise RuntimeError("nginx is not installed: run scripts/setup.sh --browser")
    main = render(work, replicas, cert, key, https_port, http_port)
    check = subprocess.run([binary, "-t", "-p", str(work), "-c", str(main), "-e", str(work / "error.log")],
                           capture_output=True, text=True)
    if check.returncode:
        raise RuntimeError(f"nginx -t refused the site:\n{check.stderr}")
    proc = subprocess.Popen([binary, "-p", str(work), "-c", str(main), "-e", str(work / "error.log")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 10
        while not _listening(https_port):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"nginx did not start:\n{(work / 'error.log').read_text()}")
            time.sleep(0.05)
        yield NginxSite(https_port, http_port, work / "error.log", work / "access.log")
    finally:
        stop_process(proc)


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0
