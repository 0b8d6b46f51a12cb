"""ES modules from npm without a bundler: an import map and the files it points to.

A page that imports npm packages as ES modules (the scratchpad's CodeMirror editor) names its
root packages; `resolve` walks their `dependencies` in web/node_modules and finds each package's
ES module entry (`exports["."].import`, else `module`). CodeMirror, Lezer and their helpers each
ship one self-contained ESM file that imports the others by bare name, so the browser needs
exactly one import map entry and one file per package. Those files — and nothing else of the
packages — are served at `/static/esm/<name>@<version>/<entry>`, cached for good (the version is
in the URL).
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse, Response

ESM_PREFIX = "/static/esm/"
IMMUTABLE = "public, max-age=31536000, immutable"


@dataclass(frozen=True)
class EsmPackage:
    name: str  # "@codemirror/view"
    version: str
    entry: str  # path inside the package: "dist/index.js"
    file: Path

    @property
    def url(self) -> str:
        return f"{ESM_PREFIX}{self.name}@{self.version}/{self.entry}"


def resolve(node_modules: Path, roots: Iterable[str]) -> list[EsmPackage]:
    """The root packages and everything they depend on, sorted by name. A package that is not
    installed (npm not run yet) or has no ES module entry is left out: its import then fails in
    the browser, not the relay at start-up."""
    found: dict[str, EsmPackage] = {}
    seen: set[str] = set()
    todo = list(roots)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        try:
            meta = json.loads((node_modules / name / "package.json").read_text(encoding="utf-8"))
        except (FileNotFoundError, json.JSONDecodeError):
            continue
        entry, version = _entry(meta), meta.get("version")
        file = (node_modules / name / entry).resolve() if entry else None
        if file and isinstance(version, str) and file.is_file() and _inside(file, node_modules):
            found[name] = EsmPackage(name, version, entry.removeprefix("./"), file)
        todo += list(meta.get("dependencies") or {})
    return [found[name] for name in sorted(found)]


def _entry(meta: dict) -> str | None:
    exports = meta.get("exports")
    if isinstance(exports, dict):
        main = exports.get(".", exports)
        if isinstance(main, str):
            return main
        if isinstance(main, dict) and isinstance(main.get("import"), str):
            return main["import"]
    module = meta.get("module")
    return module if isinstance(module, str) else None


def _inside(file: Path, folder: Path) -> bool:
    return file.is_relative_to(folder.resolve())


def import_map(packages: Iterable[EsmPackage]) -> str:
    """The `<script type="importmap">` body: bare name -> served URL (compact JSON, so its CSP
    hash is stable)."""
    return json.dumps({"imports": {p.name: p.url for p in packages}}, separators=(",", ":"))


def csp_hash(script_text: str) -> str:
    """The CSP source that allows exactly this inline script (an import map is one)."""
    digest = hashlib.sha256(script_text.encode("utf-8")).digest()
    return "'sha256-" + base64.b64encode(digest).decode("ascii") + "'"


class EsmFiles:
    """Serves the resolved entry files and nothing else of the packages."""

    def __init__(self, packages: Iterable[EsmPackage]):
        self.files = {p.url.removeprefix(ESM_PREFIX): p.file for p in packages}

    async def endpoint(self, request: Request) -> Response:
        file = self.files.get(request.path_params["path"])
        if file is None:
            return PlainTextResponse("Not Found", status_code=404)
        return FileResponse(file, media_type="text/javascript",
                            headers={"Cache-Control": IMMUTABLE})
