"""Page readiness: navigation start → `document.body.dataset.ready = "true"` (Python started and
the page usable), for /, /login and /scratchpad (signed in), cold (new browser profile, empty
HTTP cache) and warm (same profile, next navigation), in Debian's Chromium. Then the
scratchpad's first Run: Run pressed as soon as the page is ready → the cell's output shown, which
is Pyodide's start in the worker (cold: nothing cached; warm: the next visit), with the page
compiling Pyodide's WebAssembly (as it does) and, for comparison, "?wasm=worker", without.

    .venv/bin/python bench/page_ready.py                 # pages served from this checkout
    .venv/bin/python bench/page_ready.py --pyodide       # also the same pages on Pyodide
    .venv/bin/python bench/page_ready.py --url http://127.0.0.1:8787   # a running relay

Without --url it serves the pages (relay.routes.pages.page_routes, the code the relay mounts) in a
subprocess on a free port. Times come from `performance.now()` inside the page, so they do not
include Playwright's own round trips. Goal (issue 6): warm ≤ 1.5 s, cold ≤ 3 s.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]
# Records the moment the page marks itself ready, measured from navigation start.
OBSERVE_READY = """
new MutationObserver((_, observer) => {
  if (document.body && document.body.dataset.ready === "true") {
    window.__readyAt = performance.now();
    observer.disconnect();
  }
}).observe(document, { attributes: true, subtree: true, childList: true });
"""
# A signed-in profile (the pages only read it; the scratchpad's cell below calls no model).
PROFILE = """localStorage.setItem("aipipe", JSON.stringify({token: "bench-token",
                                                      email: "bench@example.com"}));"""
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


def serve_app(port: int, pyodide: bool) -> None:
    """Subprocess mode: the pages alone (plus /<page>-pyodide variants) on 127.0.0.1:port."""
    sys.path.insert(0, str(ROOT))
    import uvicorn
    from starlette.applications import Starlette

    from relay.policy import parse_policy
    from relay.routes.pages import PAGES, page_routes
    from relay.settings import Settings

    settings = Settings(secret="x" * 40, data_dir=Path("/tmp"), web_dir=ROOT / "web", dev=True,
                        policy=parse_policy({"budget": {"*": {"limit": 0.1, "days": 7}}}))
    pages = list(PAGES)
    if pyodide:
        pages += [dataclasses.replace(p, path=p.path.rstrip("/") + "/pyodide" if p.path != "/"
                                      else "/index-pyodide", interpreter="py") for p in PAGES]
    app = Starlette(routes=page_routes(settings, pages))
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_up(url: str, timeout: float = 20) -> None:
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


def measure(base: str, paths: list[str], trials: int, warm: int) -> dict[str, dict[str, list]]:
    """Readiness of each path; for /scratchpad also "<path> first Run" (Pyodide's start)."""
    from playwright.sync_api import sync_playwright

    results: dict[str, dict[str, list]] = {}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        for path in paths:
            times: dict[str, list] = {"cold": [], "warm": [], "run cold": [], "run warm": []}
            for _ in range(trials):
                context = browser.new_context()
                context.add_init_script(OBSERVE_READY)
                if path.startswith("/scratchpad"):  # the other pages as a visitor sees them
                    context.add_init_script(PROFILE)
                if path.endswith(WORKER_COMPILES):
                    context.add_init_script(NO_PAGE_COMPILE)
                page = context.new_page()
                errors: list[str] = []
                page.on("pageerror", lambda e, errors=errors: errors.append(str(e)))
                for visit in range(1 + warm):
                    page.goto(base + path)
                    page.wait_for_function("window.__readyAt !== undefined", timeout=60_000)
                    kind = "cold" if visit == 0 else "warm"
                    times[kind].append(page.evaluate("window.__readyAt"))
                    if path.startswith("/scratchpad"):
                        page.evaluate(FIRST_RUN)
                        page.wait_for_function("window.__runAt !== undefined", timeout=180_000)
                        times["run " + kind].append(page.evaluate("window.__runAt"))
                if errors:
                    raise SystemExit(f"{path}: page errors {errors}")
                context.close()
            results[path] = {"cold": times["cold"], "warm": times["warm"]}
            if times["run cold"]:
                results[path + " first Run"] = {"cold": times["run cold"],
                                                "warm": times["run warm"]}
        browser.close()
    return results


def report(results: dict[str, dict[str, list]]) -> str:
    lines = [f"{'page':34} {'cold median':>12} {'cold range':>16} {'warm median':>12} "
             f"{'warm range':>16}"]
    for path, r in results.items():
        cold, warm = r["cold"], r["warm"]
        lines.append(
            f"{path:34} {statistics.median(cold) / 1000:11.2f}s "
            f"{min(cold) / 1000:7.2f}–{max(cold) / 1000:.2f}s "
            f"{statistics.median(warm) / 1000:11.2f}s "
            f"{min(warm) / 1000:7.2f}–{max(warm) / 1000:.2f}s")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", help="measure a running relay instead of serving the pages")
    parser.add_argument("--pyodide", action="store_true",
                        help="also measure the same pages on Pyodide (for comparison)")
    parser.add_argument("--trials", type=int, default=5, help="cold loads per page")
    parser.add_argument("--warm", type=int, default=3, help="warm loads after each cold one")
    parser.add_argument("--json", type=Path, help="also write the raw times (ms) here")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve_app(args.serve, args.pyodide)
        return 0

    paths = ["/", "/login", "/scratchpad", "/scratchpad" + WORKER_COMPILES]
    server = None
    base = args.url
    if base is None:
        port = free_port()
        cmd = [sys.executable, __file__, "--serve", str(port)] + (["--pyodide"] if args.pyodide else [])
        server = subprocess.Popen(cmd, env={**os.environ, "PYTHONPATH": str(ROOT)})
        base = f"http://127.0.0.1:{port}"
        if args.pyodide:
            paths += ["/index-pyodide", "/login/pyodide"]
    try:
        wait_up(base.rstrip("/"))
        results = measure(base.rstrip("/"), paths, args.trials, args.warm)
    finally:
        if server:
            server.terminate()
            server.wait(timeout=10)
    print(f"{os.cpu_count()} cores; {args.trials} cold loads per page, {args.warm} warm after each")
    print(report(results))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
