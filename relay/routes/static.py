"""Static files for the pages: the npm runtime packages (PyScript, MicroPython, Pyodide and the
JS libraries pages drive) from web/node_modules, and web/static and web/py, each with explicit
cache headers and content types — served from this host, never from a CDN.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starlette.responses import PlainTextResponse, Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"  # cache, but ask (ETag) every time: edits show at once
# Types that must be right whatever the system's mime.types says (wasm streams only as
# application/wasm; module scripts need a JavaScript type).
_TYPES = {".mjs": "text/javascript", ".js": "text/javascript", ".wasm": "application/wasm",
          ".py": "text/x-python; charset=utf-8", ".whl": "application/zip"}


@dataclass(frozen=True)
class Runtime:
    """An npm package served under /static/<name>/ (and /static/<name>/<version>/, immutable)."""

    name: str  # URL segment
    package: str  # directory under web/node_modules
    subdir: str = ""  # where its files are inside the package
    entry: str = ""  # the file pages load


RUNTIMES = (
    Runtime("pyscript", "@pyscript/core", "dist", "core.js"),
    Runtime("pyodide", "pyodide", "", "pyodide.mjs"),
    Runtime("micropython", "@micropython/micropython-webassembly-pyscript", "", "micropython.mjs"),
    # JS libraries the playground, dashboard and admin pages drive from Python (issue 7).
    Runtime("marked", "marked", "lib", "marked.umd.js"),
    Runtime("dompurify", "dompurify", "dist", "purify.min.js"),
    Runtime("highlight", "@highlightjs/cdn-assets", "", "highlight.min.js"),
    Runtime("vega", "vega", "build", "vega.min.js"),
)
# What a page loads from a runtime package: code, WebAssembly, styles, Pyodide's stdlib zip and
# lock file, wheels, source maps. Nothing else in the packages is served — not Pyodide's
# console.html (a page on this origin, beside the stored token, with scripts from a CDN), nor
# READMEs, type stubs or images.
RUNTIME_FILES = frozenset({".js", ".mjs", ".wasm", ".css", ".zip", ".json", ".whl", ".map"})


class Static(StaticFiles):
    """StaticFiles with explicit cache headers and content types. With `versioned`, a request
    carrying `?v=` (the content hash the page put there) is cached for good."""

    def __init__(self, directory: Path, cache_control: str, *, versioned: bool = False,
                 only: frozenset[str] | None = None):
        # check_dir=False: a missing web/node_modules (npm not run yet) answers 404, not a crash.
        super().__init__(directory=directory, check_dir=False)
        self.cache_control = cache_control
        self.versioned = versioned
        self.only = only  # the file name endings served; None: all

    async def get_response(self, path: str, scope: Scope) -> Response:
        if self.only is not None and Path(path).suffix.lower() not in self.only:
            return PlainTextResponse("Not Found", status_code=404)
        return await super().get_response(path, scope)

    async def check_config(self) -> None:
        """A missing directory (npm not run yet) answers 404 instead of raising."""
        if self.directory is not None and Path(self.directory).is_dir():
            await super().check_config()

    def file_response(
        self, full_path: Any, stat_result: os.stat_result, scope: Scope, status_code: int = 200
    ) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        query = scope.get("query_string", b"")
        immutable = self.versioned and query.startswith(b"v=")
        response.headers["Cache-Control"] = IMMUTABLE if immutable else self.cache_control
        kind = _TYPES.get(Path(str(full_path)).suffix)
        if kind and status_code == 200 and response.status_code == 200:
            response.headers["Content-Type"] = kind
        return response


def package_version(web: Path, rt: Runtime) -> str | None:
    """The runtime package's version (its versioned URLs are cached for good), if installed."""
    try:
        data = json.loads((web / "node_modules" / rt.package / "package.json").read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    version = data.get("version")
    return version if isinstance(version, str) and version.replace(".", "").isalnum() else None
