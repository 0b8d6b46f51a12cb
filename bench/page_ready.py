"""Page readiness: navigation start → `document.body.dataset.ready = "true"` (Python started, the
page filled in and usable), for every page, signed out and signed in (a student; the admin for
/admin), cold (new browser profile, empty HTTP cache) and warm (same profile, next navigation),
in Debian's Chromium. For the signed-in scratchpad also its first Run: Run pressed as soon as the
page is ready → the cell's output shown, which is Pyodide's start in the worker (cold: nothing
cached; warm: the next visit); `--worker-compiles` adds the same without the page compiling
Pyodide's WebAssembly for the worker, for comparison.

    .venv/bin/python bench/page_ready.py                  # a fresh `aipipe serve --dev`, no keys
    .venv/bin/python bench/page_ready.py --max-cold 1.0   # exit 1 if a cold median is over 1 s
    .venv/bin/python bench/page_ready.py --url http://127.0.0.1:8787   # a running --dev relay
    .venv/bin/python bench/page_ready.py --pyodide        # / and /login on Pyodide too (pages only)
    .venv/bin/python bench/page_ready.py --worker-compiles   # the scratchpad's first Run, both ways

Without --url it starts `python -m relay serve --dev` in a temporary folder (as a first-time
user does: no keys, the built-in demo model, a recorded call so the charts have data). Signed-in
rows use the dev sign-in (`POST /dev-login`). Times come from `performance.now()` inside the
page, so they do not include Playwright's own round trips. Goal (issue 18): cold ≤ 1 s per page.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if __package__ in (None, ""):  # `python bench/page_ready.py`: make the repo importable
    sys.path.insert(0, str(ROOT))

from testkit.relay_process import free_port  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]
PAGES = ("/", "/login", "/playground", "/scratchpad", "/dashboard", "/admin")
STUDENT, ADMIN = "bench.student@example.com", "admin@example.com"
# Records the moment the page marks itself ready, measured from navigation start.
OBSERVE_READY = """
new MutationObserver((_, observer) => {
  if (document.body && document.body.dataset.ready === "true") {
    window.__readyAt = performance.now();
    observer.disconnect();
  }
}).observe(document, { attributes: true, subtree: true, childList: true });
"""
# The comparison: without the page's compile (as if Pyodide compiled its WebAssembly in the worker).
NO_PAGE_COMPILE = """WebAssembly.compileStreaming = () =>
  Promise.reject(new Error("bench: let the worker compile"));"""
WORKER_COMPILES = "?wasm=worker"  # the query marks the variant for this script; the page ignores it
# Press Run on the scratchpad and note when the cell's output appears, from inside the page.
FIRST_RUN = """() => {
  const output = document.querySelector('[data-testid="output"]');
  const code = document.querySelector('[data-testid="code"]');
  window.__runAt = undefined;
  new MutationObserver((_, observer) => {
    if (output.textContent.includes("bench-ok")) {
      window.__runAt = performance.now() - window.__runStart;
      observer.disconnect();
    }
  }).observe(output, { childList: true, subtree: true, characterData: true });
  code.value = "print('bench-ok')";
  window.__runStart = performance.now();
  document.querySelector('[data-testid="run"]').click();
}"""


def serve_pages(port: int) -> None:
    """--pyodide mode: the pages alone, and the same pages on Pyodide, on 127.0.0.1:port."""
    sys.path.insert(0, str(ROOT))
    import uvicorn
    from starlette.applications import Starlette

    from relay.policy import parse_policy
    from relay.routes.pages import PAGES as ALL_PAGES
    from relay.routes.pages import page_routes
    from relay.settings import Settings

    settings = Settings(secret="x" * 40, data_dir=Path("/tmp"), web_dir=ROOT / "web", dev=True,
                        policy=parse_policy({"budget": {"*": {"limit": 0.1, "days": 7}}}))
    pages = list(ALL_PAGES)
    pages += [dataclasses.replace(p, path=p.path.rstrip("/") + "/pyodide" if p.path != "/"
                                  else "/index-pyodide", interpreter="py") for p in ALL_PAGES]
    app = Starlette(routes=page_routes(settings, pages))
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def wait_up(url: str, timeout: float = 30) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/config.json", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"no server answered at {url}")


@contextlib.contextmanager
def dev_relay() -> Iterator[str]:
    """`python -m relay serve --dev` with nothing configured, in a temporary folder."""
    port = free_port()
    env = {k: v for k, v in os.environ.items()
           if not (k.startswith("AIPIPE_") or k.endswith("_API_KEY") or
                   k in ("ADMIN_EMAILS", "GOOGLE_CLIENT_ID"))}
    env["PYTHONPATH"] = str(ROOT)
    with tempfile.TemporaryDirectory(prefix="page-ready-") as work:
        env["AIPIPE_DATA_DIR"] = str(Path(work) / "data")
        server = subprocess.Popen(
            [sys.executable, "-m", "relay", "serve", "--dev", "--host", "127.0.0.1", "--port",
             str(port)], cwd=work, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            url = f"http://127.0.0.1:{port}"
            wait_up(url)
            yield url
        finally:
            server.terminate()
            server.wait(timeout=15)


def token_for(base: str, email: str) -> str | None:
    """A token through the dev sign-in; None when the relay has none (not --dev)."""
    import httpx

    response = httpx.post(base + "/dev-login", json={"email": email}, timeout=10)
    return response.json()["token"] if response.status_code == 200 else None


def record_a_call(base: str, token: str) -> None:
    """One chat with the demo model, so the usage chart has something to draw."""
    import httpx

    httpx.post(base + "/openai/v1/chat/completions", headers={"Authorization": f"Bearer {token}"},
               json={"model": "aipipe-demo", "messages": [{"role": "user", "content": "Hi"}]},
               timeout=30)


@dataclasses.dataclass(frozen=True)
class Row:
    path: str
    who: str  # "signed out", or the email signed in
    token: str | None = None

    @property
    def label(self) -> str:
        role = "signed out" if not self.token else ("admin" if self.who == ADMIN else "student")
        return f"{self.path} ({role})"


def measure(base: str, rows: list[Row], trials: int, warm: int) -> dict[str, dict[str, list]]:
    from playwright.sync_api import sync_playwright

    results: dict[str, dict[str, list]] = {}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        for row in rows:
            cold_times, warm_times, run_cold, run_warm = [], [], [], []
            first_run = row.path.startswith("/scratchpad") and row.token is not None
            for _ in range(trials):
                context = browser.new_context(viewport={"width": 1280, "height": 800})
                context.add_init_script(OBSERVE_READY)
                if row.path.endswith(WORKER_COMPILES):
                    context.add_init_script(NO_PAGE_COMPILE)
                if row.token:
                    profile = json.dumps({"token": row.token, "email": row.who})
                    context.add_init_script(f"if (location.origin !== 'null') localStorage"
                                            f".setItem('aipipe', {json.dumps(profile)})")
                page = context.new_page()
                errors: list[str] = []
                page.on("pageerror", lambda e, errors=errors: errors.append(str(e)))
                for visit in range(1 + warm):
                    page.goto(base + row.path)
                    page.wait_for_function("window.__readyAt !== undefined", timeout=60_000)
                    ms = page.evaluate("window.__readyAt")
                    (cold_times if visit == 0 else warm_times).append(ms)
                    if first_run:
                        page.evaluate(FIRST_RUN)
                        page.wait_for_function("window.__runAt !== undefined", timeout=180_000)
                        (run_cold if visit == 0 else run_warm).append(page.evaluate("window.__runAt"))
                if errors:
                    raise SystemExit(f"{row.label}: page errors {errors}")
                context.close()
            results[row.label] = {"cold": cold_times, "warm": warm_times}
            if first_run:
                results[f"{row.path} first Run"] = {"cold": run_cold, "warm": run_warm}
        browser.close()
    return results


def report(results: dict[str, dict[str, list]]) -> str:
    lines = [f"{'page':40} {'cold median':>12} {'cold range':>16} {'warm median':>12} "
             f"{'warm range':>16}"]
    for label, r in results.items():
        cold, warm = r["cold"], r["warm"] or [float("nan")]
        lines.append(
            f"{label:40} {statistics.median(cold) / 1000:11.2f}s "
            f"{min(cold) / 1000:7.2f}–{max(cold) / 1000:.2f}s "
            f"{statistics.median(warm) / 1000:11.2f}s "
            f"{min(warm) / 1000:7.2f}–{max(warm) / 1000:.2f}s")
    return "\n".join(lines)


def rows_for(base: str, worker_compiles: bool) -> list[Row]:
    rows = [Row(path, "signed out") for path in PAGES]
    student = token_for(base, STUDENT)
    if student is None:
        print("(no dev sign-in on this relay: signed-out pages only)")
        return rows
    record_a_call(base, student)
    rows += [Row(path, STUDENT, student) for path in PAGES]
    if worker_compiles:
        rows.append(Row("/scratchpad" + WORKER_COMPILES, STUDENT, student))
    admin = token_for(base, ADMIN)
    if admin:
        rows.append(Row("/admin", ADMIN, admin))
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", help="measure a running relay instead of starting one")
    parser.add_argument("--pyodide", action="store_true",
                        help="/ and /login on MicroPython and on Pyodide (the pages alone)")
    parser.add_argument("--trials", type=int, default=5, help="cold loads per page")
    parser.add_argument("--warm", type=int, default=3, help="warm loads after each cold one")
    parser.add_argument("--worker-compiles", action="store_true",
                        help="also the scratchpad's first Run without the page's WebAssembly compile")
    parser.add_argument("--max-cold", type=float,
                        help="exit 1 when a page's cold median is over this many seconds")
    parser.add_argument("--json", type=Path, help="also write the raw times (ms) here")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve_pages(args.serve)
        return 0

    with contextlib.ExitStack() as stack:
        if args.pyodide:
            port = free_port()
            server = subprocess.Popen([sys.executable, __file__, "--serve", str(port)],
                                      env={**os.environ, "PYTHONPATH": str(ROOT)})
            stack.callback(lambda: (server.terminate(), server.wait(timeout=10)))
            base = f"http://127.0.0.1:{port}"
            wait_up(base)
            rows = [Row(p, "signed out") for p in ("/", "/login", "/index-pyodide",
                                                   "/login/pyodide")]
        else:
            base = (args.url or stack.enter_context(dev_relay())).rstrip("/")
            wait_up(base)
            rows = rows_for(base, args.worker_compiles)
        measure(base, rows[:1], 1, 0)  # a first load warms the server up; not counted
        results = measure(base, rows, args.trials, args.warm)
    print(f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}; {args.trials} cold "
          f"loads per page, {args.warm} warm after each; 1280×800")
    print(report(results))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=1))
    if args.max_cold is not None:
        slow = [label for label, r in results.items() if not label.endswith("first Run")
                and statistics.median(r["cold"]) > args.max_cold * 1000]
        if slow:
            print(f"over {args.max_cold:.2f} s cold: {', '.join(slow)}")
            return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
