"""The browser pages: HTML shells, their Python (PyScript), /aipipe.js, /config.json and the
local PyScript/Pyodide/MicroPython runtime from web/node_modules — no CDN at run time.

A page is data (`Page`): its URL, its HTML template in web/, its script in web/py/, the web/py
modules it imports and which interpreter runs it. Adding a page adds an entry to `PAGES`.
Templates hold `{{head}}`, `{{nav}}` and `{{script}}`, which `render_page` fills with the
stylesheet, the favicon, the public config (under the policy in force), the runtime, the shared
header (relay.routes.header) and the `<script type="mpy|py">` tag with its config. The files are
served by relay.routes.static.
"""

from __future__ import annotations

import hashlib
import html
import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Mount, Route

from relay import __version__
from relay.policy import PolicyView
from relay.providers.demo_model import DEMO_MODEL
from relay.routes import esm
from relay.routes.header import nav
from relay.routes.static import IMMUTABLE, REVALIDATE, RUNTIME_FILES, RUNTIMES, Static, package_version
from relay.settings import Settings

GOOGLE_GSI_SCRIPT = "https://accounts.google.com/gsi/client"
# Pages must not be framed: the hand-off "approve" button must never be clickjacked.
PAGE_HEADERS = {
    "Cache-Control": REVALIDATE,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "strict-origin-when-cross-origin",
}
# Scripts only from this server (the page shows a token: no third-party script may read it).
# PyScript needs eval and WebAssembly compilation; nothing else is loosened.
CSP = {
    "default-src": "'self'",
    "script-src": "'self' 'unsafe-eval' 'wasm-unsafe-eval'",
    "style-src": "'self' 'unsafe-inline'",
    "img-src": "'self' data:",
    "connect-src": "'self'",
    "frame-src": "'none'",
    "frame-ancestors": "'none'",
    "base-uri": "'none'",
    "object-src": "'none'",
    "form-action": "'self'",
}
# What Google's sign-in needs (its documented CSP), added on /login when a client id is set.
GOOGLE_CSP = {
    "script-src": GOOGLE_GSI_SCRIPT,
    "style-src": "https://accounts.google.com/gsi/style",
    "connect-src": "https://accounts.google.com/gsi/",
    "frame-src": "https://accounts.google.com/gsi/",
}


INTERPRETERS = {"py": "pyodide", "mpy": "micropython"}  # <script type=...> -> runtime name
@dataclass(frozen=True)
class Worker:
    """A Web Worker a page starts: its script (in web/static/), the runtime it loads and exactly
    which of that runtime's files it fetches (what must be served for it), and the web/py files
    it installs. The page finds the URLs as JSON in `<script id="aipipe-worker">`."""

    script: str
    runtime: str  # a RUNTIMES name, e.g. "pyodide"
    files: tuple[str, ...]  # paths inside that runtime's package the worker fetches
    modules: tuple[str, ...] = ()


# PyScript's core.js imports its core chunk, which imports these plugins as it starts: one round
# trip after another unless the page asks for them up front (names carry a content hash).
PYSCRIPT_CHUNKS = ("core-", "deprecations-manager-", "donkey-", "error-", "py-editor-", "py-game-",
                   "py-terminal-")


@dataclass(frozen=True)
class Page:
    path: str
    template: str  # HTML file in web/
    script: str  # page glue in web/py/
    modules: tuple[str, ...] = ()  # web/py files the script imports (copied next to it)
    # "mpy" (MicroPython: ready in ~0.2-0.5 s) for light pages, "py" (Pyodide: full stdlib,
    # several seconds to start) for pages that need it.
    interpreter: str = "mpy"
    google: bool = False  # load Google's sign-in script (only when a client id is set)
    # Extra Content-Security-Policy sources, e.g. {"img-src": "https:"}; None: send no CSP.
    csp: dict[str, str] | None = field(default_factory=dict)
    # npm files for <head>, as "runtime:path/in/package" ("vega:vega.min.js"), or "static:path"
    # for a file in web/static/ (cache-busted by its hash); .css becomes a stylesheet, .mjs a
    # module script, anything else a classic script.
    assets: tuple[str, ...] = ()
    # npm packages the page's module scripts import by bare name: an import map (allowed by its
    # CSP hash) points them, and their dependencies, at /static/esm/ (relay.routes.esm).
    esm: tuple[str, ...] = ()
    worker: Worker | None = None
    title: str = "AI Pipe"


# The shared browser modules: pure logic (tested under CPython) plus the thin DOM kit.
COMMON = ("pagekit.py", "markup.py", "session.py", "money.py", "snippets.py", "handoff.py")
CHARTS = ("dates.py", "catalog.py", "charts.py", "vegakit.py")  # Vega specs drawn by vega
VEGA = ("vega:vega.min.js",)
PAGES: tuple[Page, ...] = (
    Page("/", "index.html", "index_page.py", COMMON, title="AI Pipe"),
    Page("/login", "login.html", "login_page.py", COMMON, google=True, title="Sign in · AI Pipe"),
    Page("/playground", "playground.html", "playground_page.py",
         (*COMMON, "anthropic_chat.py", "catalog.py", "chat.py", "chatstream.py", "chatview.py",
          "codegen.py", "dialect.py", "picker.py", "pickerview.py", "richtext.py", "settingspanel.py"),
         assets=("marked:marked.umd.js", "dompurify:purify.min.js", "highlight:highlight.min.js"),
         title="Playground · AI Pipe"),
    Page("/dashboard", "dashboard.html", "dashboard_page.py",
         (*COMMON, *CHARTS, "usage_view.py"), assets=VEGA, title="Usage · AI Pipe"),
    Page("/admin", "admin.html", "admin_page.py", (*COMMON, *CHARTS, "admin_view.py"),
         assets=VEGA, title="Admin · AI Pipe"),
    # The page is light (MicroPython, CodeMirror); Pyodide runs cells in a worker, on demand.
    Page("/scratchpad", "scratchpad.html", "scratchpad_page.py", (*COMMON, "catalog.py", "scratch.py"),
         assets=("static:scratchpad/editor.mjs",),
         esm=("@codemirror/commands", "@codemirror/lang-python", "@codemirror/language",
              "@codemirror/state", "@codemirror/view", "@lezer/highlight"),
         worker=Worker("scratchpad/worker.mjs", "pyodide",
                       ("pyodide.mjs", "pyodide.asm.mjs", "pyodide.asm.wasm", "python_stdlib.zip",
                        "pyodide-lock.json"),
                       ("aipipe.py", "cellrun.py", "scratch_worker.py")),
         title="Scratchpad · AI Pipe"),
)


def page_routes(settings: Settings, pages: Sequence[Page] = PAGES) -> list[BaseRoute]:
    """Every route of the browser side; the app mounts them next to the API. `pages` lets a
    benchmark serve variants (e.g. a page on Pyodide instead of MicroPython)."""
    web = Path(settings.web_dir)
    site = _Site(settings, web, pages)
    routes: list[BaseRoute] = [
        Route(page.path, site.page_endpoint(page), methods=["GET", "HEAD"]) for page in pages
    ]
    routes += [
        Route(esm.ESM_PREFIX + "{path:path}", site.esm_files.endpoint, methods=["GET", "HEAD"]),
        Route("/aipipe.js", site.aipipe_js, methods=["GET", "HEAD"]),
        Route("/favicon.ico", site.favicon, methods=["GET", "HEAD"]),
        Route("/config.json", site.config_json, methods=["GET", "HEAD"]),
    ]
    for rt in RUNTIMES:
        directory = web / "node_modules" / rt.package / rt.subdir
        version = site.versions.get(rt.name)
        if version:  # versioned URLs never change content: cache them for good
            routes.append(Mount(f"/static/{rt.name}/{version}",
                                app=Static(directory, IMMUTABLE, only=RUNTIME_FILES)))
        routes.append(Mount(f"/static/{rt.name}",
                            app=Static(directory, REVALIDATE, only=RUNTIME_FILES)))
    routes.append(Mount("/static/py", app=Static(web / "py", REVALIDATE, versioned=True)))
    routes.append(Mount("/static", app=Static(web / "static", REVALIDATE, versioned=True)))
    return routes


def public_config(settings: Settings, policy: PolicyView | None = None) -> dict[str, Any]:
    """What any page (and any visitor) may know about this deployment. Money as strings.
    `policy`: the one in force (the app's LivePolicy: a SIGHUP reload shows at once)."""
    budget = (policy or settings.policy).default_budget()
    demo = settings.dev and "openai" not in settings.provider_keys  # see relay.providers.demo_model
    return {
        "version": __version__,
        "dev": settings.dev,
        "google_client_id": settings.google_client_id,
        "allowed_origins": list(settings.allowed_origins),
        "budget": None if budget is None else {"limit": _usd(budget.limit), "days": budget.days},
        "demo_model": DEMO_MODEL if demo else None,
        # Which providers answer here, so pages ask only those (no 503s for the others).
        "providers": sorted({*settings.provider_keys, *(["openai"] if demo else [])}),
    }


def _usd(value: Decimal) -> str:
    return format(value.normalize(), "f") if value == value.to_integral() else format(value, "f")


class _Site:
    """Renders pages; holds only what is derived from settings and files (no mutable state
    that handlers change, except the file-hash cache keyed by mtime)."""

    def __init__(self, settings: Settings, web: Path, pages: Sequence[Page]):
        self.settings = settings
        self.web = web
        self.versions = {rt.name: package_version(web, rt) for rt in RUNTIMES}
        self._hashes: dict[Path, tuple[int, str]] = {}
        # Import maps per page (bare name -> /static/esm/ URL), and the files they point to.
        node_modules = web / "node_modules"
        self.esm = {page.path: esm.resolve(node_modules, page.esm) for page in pages if page.esm}
        self.esm_files = esm.EsmFiles(p for found in self.esm.values() for p in found)
        dist = web / "node_modules" / "@pyscript" / "core" / "dist"
        self.pyscript_chunks = sorted(
            f.name for f in dist.glob("*.js") if dist.is_dir()
            and any(f.name.startswith(p) and "-" not in f.name[len(p):] for p in PYSCRIPT_CHUNKS))

    # -- endpoints -------------------------------------------------------------------------
    def page_endpoint(self, page: Page) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            return Response(self.render_page(page, self.config(request)), media_type="text/html",
                            headers=self.headers(page))

        endpoint.__name__ = f"page_{page.script.removesuffix('.py')}"
        return endpoint

    async def aipipe_js(self, request: Request) -> Response:
        path = self.web / "aipipe.js"
        if not path.is_file():
            return PlainTextResponse("aipipe.js missing", status_code=404)
        return FileResponse(path, media_type="text/javascript; charset=utf-8", headers={
            "Access-Control-Allow-Origin": "*",
            "Cache-Control": "public, max-age=300",  # third-party pages pick up changes soon
            "Cross-Origin-Resource-Policy": "cross-origin",
        })

    async def favicon(self, request: Request) -> Response:
        return FileResponse(self.web / "favicon.ico", media_type="image/x-icon",
                            headers={"Cache-Control": "public, max-age=86400"})

    async def config_json(self, request: Request) -> Response:
        return JSONResponse(self.config(request), headers={"Cache-Control": REVALIDATE,
                                                  "Access-Control-Allow-Origin": "*"})

    # -- rendering -------------------------------------------------------------------------
    def headers(self, page: Page) -> dict[str, str]:
        headers = dict(PAGE_HEADERS)
        if page.csp is not None:
            policy = dict(CSP)
            extras = [page.csp]
            if page.esm:
                extras.append({"script-src": esm.csp_hash(self.import_map(page))})
            if page.google and self.settings.google_client_id:
                extras.append(GOOGLE_CSP)
            for extra in extras:
                for key, value in extra.items():
                    base = policy.get(key, "")
                    policy[key] = value if base in ("", "'none'") else f"{base} {value}"
            headers["Content-Security-Policy"] = "; ".join(f"{k} {v}" for k, v in policy.items())
        return headers

    def config(self, request: Request) -> dict[str, Any]:
        """The public config under the policy in force (the app's, once its lifespan has run;
        the settings' own for page routes served alone, as the benchmark does)."""
        return public_config(self.settings, getattr(request.app.state, "policy", None))

    def render_page(self, page: Page, config: dict[str, Any]) -> str:
        template = (self.web / page.template).read_text(encoding="utf-8")
        return (template.replace("{{head}}", self.head(page, config)).replace("{{nav}}", nav(page.path))
                .replace("{{script}}", self.script(page)))

    def head(self, page: Page, config: dict[str, Any]) -> str:
        pyscript = self.runtime_url("pyscript")
        public = json.dumps(config).replace("</", "<\\/")
        parts = [
            '<meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>{html.escape(page.title)}</title>",
            '<link rel="icon" href="/favicon.ico">',
            f'<link rel="stylesheet" href="{self.static_url("aipipe.css")}">',
            # Theme and signed-in state before the first paint (no flash of the wrong ones).
            f'<script src="{self.static_url("boot.js")}"></script>',
            f'<link rel="stylesheet" href="{pyscript}core.css">',
            f'<script type="application/json" id="aipipe-config">{public}</script>',
            *self.page_data(page),
            # Fetch the interpreter while PyScript itself loads: it is the long pole.
            f'<link rel="modulepreload" href="{self.interpreter_url(page)}">',
            f'<script type="module" src="{pyscript}core.js"></script>',
        ]
        # ...and the page's own Python (and MicroPython's wasm), which PyScript would only ask
        # for once it has started: fetched alongside it instead (issue 18, ready <= 1 s cold).
        parts += [f'<link rel="modulepreload" href="{pyscript}{name}">'
                  for name in self.pyscript_chunks]
        preload = [self.py_url(name) for name in (page.script, *page.modules)]
        if page.interpreter == "mpy":
            preload.insert(0, self.runtime_url("micropython") + "micropython.wasm")
        parts += [f'<link rel="preload" as="fetch" crossorigin href="{html.escape(url)}">'
                  for url in preload]
        for asset in page.assets:
            parts.append(self.asset_tag(asset))
        if page.google and self.settings.google_client_id:
            parts.append(f'<script src="{GOOGLE_GSI_SCRIPT}" async defer></script>')
        return "\n".join(parts)

    def script(self, page: Page) -> str:
        config = {
            "interpreter": self.interpreter_url(page),
            "files": {self.py_url(m): f"./{m}" for m in page.modules},
        }
        attr = html.escape(json.dumps(config), quote=True)
        return (f'<script type="{page.interpreter}" src="{self.py_url(page.script)}" '
                f'config="{attr}"></script>')

    def page_data(self, page: Page) -> list[str]:
        """The import map (before any module script) and the worker's URLs, if the page has
        them."""
        parts = []
        if page.esm:
            parts.append(f'<script type="importmap">{self.import_map(page)}</script>')
            # All at once, rather than level by level as the imports are discovered.
            parts += [f'<link rel="modulepreload" href="{p.url}">' for p in self.esm[page.path]]
        if page.worker:
            worker = page.worker
            data = {
                "script": self.static_url(worker.script),
                "runtime": self.runtime_url(worker.runtime),
                "files": list(worker.files),
                "modules": {name: self.py_url(name) for name in worker.modules},
            }
            text = json.dumps(data).replace("</", "<\\/")
            parts.append(f'<script type="application/json" id="aipipe-worker">{text}</script>')
        return parts

    def import_map(self, page: Page) -> str:
        return esm.import_map(self.esm[page.path]).replace("</", "<\\/")

    def asset_tag(self, asset: str) -> str:
        runtime, _, path = asset.partition(":")
        if runtime == "static":
            url = html.escape(self.static_url(path), quote=True)
        elif runtime in self.versions:
            url = html.escape(self.runtime_url(runtime) + path, quote=True)
        else:
            raise ValueError(f"page asset {asset!r}: unknown runtime {runtime!r} (add to RUNTIMES)")
        if path.endswith(".css"):
            return f'<link rel="stylesheet" href="{url}">'
        kind = ' type="module"' if path.endswith(".mjs") else " defer"  # never block the paint
        return f'<script{kind} src="{url}"></script>'

    def runtime_url(self, name: str) -> str:
        version = self.versions.get(name)
        return f"/static/{name}/{version}/" if version else f"/static/{name}/"

    def interpreter_url(self, page: Page) -> str:
        runtime = INTERPRETERS[page.interpreter]
        entry = next(rt.entry for rt in RUNTIMES if rt.name == runtime)
        return self.runtime_url(runtime) + entry

    def py_url(self, name: str) -> str:
        return f"/static/py/{name}?v={self.file_hash(self.web / 'py' / name)}"

    def static_url(self, name: str) -> str:
        return f"/static/{name}?v={self.file_hash(self.web / 'static' / name)}"

    def file_hash(self, path: Path) -> str:
        """Short content hash for cache-busting URLs, recomputed only when the file changes."""
        try:
            mtime = path.stat().st_mtime_ns
        except FileNotFoundError:
            return "missing"
        cached = self._hashes.get(path)
        if cached and cached[0] == mtime:
            return cached[1]
        digest = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
        self._hashes[path] = (mtime, digest)
        return digest
