"""The scratchpad's browser files without a browser: the import map that lets CodeMirror run from
web/node_modules without a bundler (allowed by its CSP hash), the ES module files served for it
and nothing else, and the Pyodide worker's declared files and modules."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from relay.routes import esm
from relay.routes.pages import PAGES
from tests.test_pages import client, make_settings
from tests.tools import need

ROOT = Path(__file__).resolve().parents[1]
NODE_MODULES = ROOT / "web" / "node_modules"
SCRATCHPAD = next(p for p in PAGES if p.path == "/scratchpad")
IMPORT = re.compile(r"""(?:^|[;\s])(?:import|export)\b[^'";]*?from\s*['"]([^'"]+)['"]"""
                    r"""|import\s*\(\s*['"]([^'"]+)['"]|^import\s+['"]([^'"]+)['"]""", re.M)


@pytest.fixture
def pad(tmp_path: Path) -> tuple[TestClient, str]:
    need((NODE_MODULES / "@codemirror" / "view").is_dir(),
         "web/node_modules (bash scripts/setup.sh)")
    c = client(make_settings(tmp_path))
    return c, c.get("/scratchpad").text


def import_map(html: str) -> tuple[str, dict[str, str]]:
    text = re.search(r'<script type="importmap">(.*?)</script>', html, re.S).group(1)
    return text, json.loads(text)["imports"]


def test_the_import_map_resolves_every_bare_import_of_the_editor(pad) -> None:
    """Every module the editor loads (editor.mjs and each file the map points to) imports only
    names the map has, and the map has nothing else: the graph loads without a bundler, file by
    file, each JavaScript cached for good."""
    c, html = pad
    _text, imports = import_map(html)
    editor = re.search(r'src="(/static/scratchpad/editor\.mjs\?v=\w+)"', html).group(1)
    sources = {editor: c.get(editor).text}
    for url in imports.values():
        response = c.get(url)
        assert response.status_code == 200, url
        assert response.headers["content-type"].startswith("text/javascript")
        assert "immutable" in response.headers["cache-control"]
        sources[url] = response.text
    used = set()
    for url, source in sources.items():
        for match in IMPORT.finditer(source):
            name = next(g for g in match.groups() if g)
            assert name in imports, f"{url} imports {name!r}, which the map lacks"
            used.add(name)
    assert used == set(imports)  # and the map holds nothing the editor does not load
    assert {"@codemirror/view", "@codemirror/lang-python", "@lezer/python", "style-mod"} <= \
        set(imports)


def test_the_import_map_comes_first_and_its_hash_is_the_only_inline_script_allowed(pad) -> None:
    """The map precedes every module script (browsers ignore a late one) and the page's CSP
    allows exactly that inline script by its sha256 — no 'unsafe-inline'."""
    c, html = pad
    text, _imports = import_map(html)
    assert html.index('type="importmap"') < html.index('<script type="module"')
    policy = dict(part.strip().split(" ", 1)
                  for part in c.get("/scratchpad").headers["content-security-policy"].split(";"))
    assert policy["script-src"] == ("'self' 'unsafe-eval' 'wasm-unsafe-eval' " +
                                    esm.csp_hash(text))
    assert "unsafe-inline" not in policy["script-src"]
    assert "importmap" not in c.get("/").text  # other pages are untouched


def test_only_the_entry_files_of_the_mapped_packages_are_served(pad) -> None:
    """/static/esm/ is an allow-list: the mapped files answer; anything else in those packages
    (package.json, sources, other versions) or outside them is 404."""
    c, html = pad
    _text, imports = import_map(html)
    view = imports["@codemirror/view"]
    assert c.get(view).status_code == 200
    prefix = view.rsplit("/dist/", 1)[0]
    for path in (prefix + "/package.json", prefix + "/dist/index.cjs",
                 view.replace("@6.", "@5."), "/static/esm/@codemirror/view/dist/index.js",
                 "/static/esm/../../relay/settings.py", "/static/esm/%2e%2e/package.json",
                 "/static/esm/pyodide@314.0.7/pyodide.mjs"):
        assert c.get(path).status_code == 404, path


def test_the_worker_gets_its_script_pyodide_and_modules(pad) -> None:
    """The page names its worker, the Pyodide files it fetches (exactly these must be served)
    and the web/py modules it installs; each answers, the wasm as application/wasm."""
    c, html = pad
    data = json.loads(re.search(r'<script type="application/json" id="aipipe-worker">(.*?)'
                                r'</script>', html).group(1))
    assert c.get(data["script"]).headers["content-type"].startswith("text/javascript")
    assert data["runtime"].startswith("/static/pyodide/")
    assert data["files"] == list(SCRATCHPAD.worker.files)
    for name in data["files"]:
        response = c.get(data["runtime"] + name)
        assert response.status_code == 200, name
        assert "immutable" in response.headers["cache-control"]
    assert c.get(data["runtime"] + "pyodide.asm.wasm").headers["content-type"] == \
        "application/wasm"
    assert sorted(data["modules"]) == ["aipipe.py", "cellrun.py", "scratch_worker.py"]
    for url in data["modules"].values():
        assert c.get(url).status_code == 200


def test_resolve_follows_dependencies_and_survives_a_missing_install(tmp_path: Path) -> None:
    """resolve() walks `dependencies`, takes exports["."].import, else `module`, skips packages
    without an ES entry, never leaves node_modules, and returns nothing (no crash) before npm."""
    nm = tmp_path / "node_modules"

    def package(name: str, meta: dict, files: dict[str, str]) -> None:
        folder = nm / name
        folder.mkdir(parents=True)
        (folder / "package.json").write_text(json.dumps({"name": name, **meta}))
        for path, text in files.items():
            (folder / path).parent.mkdir(parents=True, exist_ok=True)
            (folder / path).write_text(text)

    package("@a/root", {"version": "1.0.0", "exports": {".": {"import": "./dist/index.js"}},
                        "dependencies": {"b": "1", "cjs-only": "1", "sneaky": "1"}},
            {"dist/index.js": "import 'b'"})
    package("b", {"version": "2.1.0", "module": "src/b.js", "dependencies": {"@a/root": "1"}},
            {"src/b.js": ""})
    package("cjs-only", {"version": "1.0.0", "main": "index.js"}, {"index.js": ""})
    package("sneaky", {"version": "1.0.0", "module": "../../../etc/passwd"}, {})
    found = esm.resolve(nm, ["@a/root"])
    assert [(p.name, p.url) for p in found] == [
        ("@a/root", "/static/esm/@a/root@1.0.0/dist/index.js"),
        ("b", "/static/esm/b@2.1.0/src/b.js")]
    assert json.loads(esm.import_map(found)) == {"imports": {
        "@a/root": "/static/esm/@a/root@1.0.0/dist/index.js", "b": "/static/esm/b@2.1.0/src/b.js"}}
    assert esm.resolve(tmp_path / "missing", ["@a/root"]) == []
