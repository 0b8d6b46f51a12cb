"""relay/pages.py: the page shells, /config.json, /aipipe.js and the local runtime, served
without a browser (Starlette TestClient on the page routes alone)."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from relay.policy import parse_policy
from relay.routes.pages import PAGES, Page, page_routes
from relay.settings import Settings
from tests.tools import need

ROOT = Path(__file__).resolve().parents[1]
HAS_RUNTIME = (ROOT / "web/node_modules/@pyscript/core/package.json").is_file()


@pytest.fixture
def needs_runtime() -> None:
    need(HAS_RUNTIME, "web/node_modules (bash scripts/setup.sh)")


def make_settings(tmp_path: Path, **changes: object) -> Settings:
    base = Settings(
        secret="s" * 40, data_dir=tmp_path, web_dir=ROOT / "web", dev=False,
        policy=parse_policy({"budget": {"*": {"limit": 0.10, "days": 7}}}),
        allowed_origins=("https://app.example.com",),
    )
    return dataclasses.replace(base, **changes)


def client(settings: Settings) -> TestClient:
    return TestClient(Starlette(routes=page_routes(settings)))


def external_urls(html: str) -> list[str]:
    return re.findall(r"""(?:src|href)=["'](https?://[^"']+)""", html)


@pytest.mark.parametrize("spec", PAGES, ids=lambda p: p.path)
def test_every_page_is_served_complete_and_local(tmp_path: Path, spec: Page) -> None:
    """Each page is HTML with its placeholders filled, PyScript and its interpreter from
    /static, and nothing from a CDN; pages cannot be framed (no clickjacked Allow button)."""
    response = client(make_settings(tmp_path)).get(spec.path)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["x-frame-options"] == "DENY"
    html = response.text
    assert not re.search(r"\{\{\w+\}\}", html)  # every {{placeholder}} filled
    assert external_urls(html) == []
    match = re.search(r'<script type="(mpy|py)" src="([^"]+)" config="([^"]+)"', html)
    assert match, html
    config = json.loads(match.group(3).replace("&quot;", '"'))
    assert config["interpreter"].startswith("/static/")
    assert config["interpreter"].endswith(("/micropython.mjs", "/pyodide.mjs"))
    assert all(url.startswith("/static/py/") for url in config["files"])
    assert '<script type="module" src="/static/pyscript/' in html


def test_google_script_only_on_login_and_only_when_configured(tmp_path: Path) -> None:
    """Google's sign-in script is the one outside load, on /login, with a client id only."""
    with_google = client(make_settings(tmp_path, google_client_id="cid.apps.googleusercontent.com"))
    assert external_urls(with_google.get("/login").text) == ["https://accounts.google.com/gsi/client"]
    assert external_urls(with_google.get("/").text) == []
    assert external_urls(client(make_settings(tmp_path)).get("/login").text) == []


def test_config_json_is_public_and_exact(tmp_path: Path) -> None:
    """/config.json tells pages the deployment's sign-in options and default budget, with
    money as a string (no float rounding) — and is embedded in every page the same way."""
    settings = make_settings(tmp_path, dev=True, google_client_id="cid")
    c = client(settings)
    config = c.get("/config.json").json()
    assert config == {"version": config["version"], "dev": True, "google_client_id": "cid",
                      "allowed_origins": ["https://app.example.com"],
                      "budget": {"limit": "0.1", "days": 7}, "demo_model": "aipipe-demo",
                      "providers": ["openai"]}
    embedded = re.search(r'id="aipipe-config">(.*?)</script>', c.get("/").text).group(1)
    assert json.loads(embedded) == config


def test_config_json_names_the_providers_with_a_key(tmp_path: Path) -> None:
    """Pages learn which providers the operator configured (the playground lists Claude models
    only when there is an Anthropic key) — their names, never their keys."""
    keys = {"anthropic": "sk-ant-operator-secret", "openai": "sk-operator-secret"}
    config = client(make_settings(tmp_path, provider_keys=keys)).get("/config.json")
    assert config.json()["providers"] == ["anthropic", "openai"]
    assert "secret" not in config.text


def test_aipipe_js_is_cors_open_javascript(tmp_path: Path) -> None:
    """Any site can import /aipipe.js as a module."""
    response = client(make_settings(tmp_path)).get("/aipipe.js")
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "*"
    assert response.headers["content-type"].startswith("text/javascript")
    assert "export function getProfile" in response.text


def test_favicon(tmp_path: Path) -> None:
    """Chromium asks for /favicon.ico on every page; a 404 would be a console error."""
    response = client(make_settings(tmp_path)).get("/favicon.ico")
    assert response.status_code == 200 and response.content[:4] == b"\x00\x00\x01\x00"


@pytest.mark.usefixtures("needs_runtime")
def test_runtime_caching(tmp_path: Path) -> None:
    """Versioned runtime URLs (what pages use) are cached for good; the unversioned path
    works too but revalidates; wasm is served as application/wasm."""
    c = client(make_settings(tmp_path))
    html = c.get("/login").text
    interpreter = re.search(r'&quot;interpreter&quot;: &quot;([^&]+)&quot;', html).group(1)
    versioned = c.get(interpreter)
    assert versioned.status_code == 200
    assert "immutable" in versioned.headers["cache-control"]
    assert versioned.headers["content-type"].startswith("text/javascript")
    plain = c.get("/static/micropython/micropython.wasm")
    assert plain.headers["content-type"] == "application/wasm"
    assert plain.headers["cache-control"] == "no-cache"
    assert c.get("/static/pyodide/pyodide.mjs").status_code == 200


@pytest.mark.usefixtures("needs_runtime")
def test_only_the_runtime_files_pages_load_are_served(tmp_path: Path) -> None:
    """Pyodide's console.html (a page on this origin, next to the stored token, loading scripts
    from a CDN) and the packages' other files are not served — at either URL — while what the
    pages load (code, wasm, the stdlib zip, the lock file, styles) is."""
    c = client(make_settings(tmp_path))
    version = json.loads((ROOT / "web/node_modules/pyodide/package.json").read_text())["version"]
    for base in ("/static/pyodide/", f"/static/pyodide/{version}/"):
        for name in ("console.html", "console-v2.html", "README.md", "pyodide.d.ts",
                     "../pyodide/console.html", "CONSOLE.HTML"):
            assert c.get(base + name).status_code == 404, base + name
        for name in ("pyodide.mjs", "pyodide.asm.wasm", "python_stdlib.zip", "pyodide-lock.json"):
            assert c.get(base + name).status_code == 200, base + name
    assert c.get("/static/micropython/README.md").status_code == 404
    assert c.get("/static/pyscript/core.css").status_code == 200


def test_own_files_are_cache_busted_by_content_hash(tmp_path: Path) -> None:
    """web/py and css URLs carry ?v=<hash>: cached for good, and a change makes a new URL."""
    web = tmp_path / "web"
    (web / "py").mkdir(parents=True)
    (web / "static").mkdir()
    for page in PAGES:
        (web / page.template).write_text("<head>{{head}}</head>{{script}}")
        (web / "py" / page.script).write_text("print(1)")
    for name in ("pagekit.py", "markup.py", "session.py", "money.py", "snippets.py", "handoff.py"):
        (web / "py" / name).write_text("")
    (web / "static" / "aipipe.css").write_text("body {}")
    (web / "static" / "boot.js").write_text("")
    c = client(make_settings(tmp_path, web_dir=web))
    first = re.search(r'src="(/static/py/index_page\.py\?v=\w+)"', c.get("/").text).group(1)
    response = c.get(first)
    assert response.text == "print(1)" and "immutable" in response.headers["cache-control"]
    (web / "py" / "index_page.py").write_text("print(2)")
    second = re.search(r'src="(/static/py/index_page\.py\?v=\w+)"', c.get("/").text).group(1)
    assert second != first
    assert c.get("/static/py/index_page.py").headers["cache-control"] == "no-cache"
    # no node_modules in this web dir: runtime URLs answer 404, they do not crash the app
    assert c.get("/static/pyodide/pyodide.mjs").status_code == 404


def test_pages_send_a_strict_content_security_policy(tmp_path: Path) -> None:
    """Scripts only from this server (plus Google's sign-in on /login when configured): a
    page that shows a token runs no third-party code and cannot be framed."""
    c = client(make_settings(tmp_path, google_client_id="cid"))
    landing = c.get("/").headers["content-security-policy"]
    assert "script-src 'self' 'unsafe-eval' 'wasm-unsafe-eval';" in landing
    assert "frame-ancestors 'none'" in landing and "accounts.google.com" not in landing
    login = dict(part.strip().split(" ", 1) for part in
                 c.get("/login").headers["content-security-policy"].split(";"))
    assert login["script-src"].endswith("https://accounts.google.com/gsi/client")
    assert login["frame-src"] == "https://accounts.google.com/gsi/"
    without_google = client(make_settings(tmp_path)).get("/login")
    assert "accounts.google.com" not in without_google.headers["content-security-policy"]


def nav_of(html: str) -> str:
    return re.search(r'<header class="bar">.*?</header>', html, re.S).group(0)


@pytest.mark.parametrize("spec", PAGES, ids=lambda p: p.path)
def test_header_marks_the_current_page_and_has_an_account_corner(tmp_path: Path, spec: Page) -> None:
    """Every page's header: the brand, the page links with the current one marked (the sign-in
    page marks the account corner), an Admin link that only admins see (CSS shows `.admin-only`
    when the page learns the user is one), a theme switch and the account corner — "Sign in"
    or the signed-in email (`who`) — never a "Sign in" page link."""
    header = nav_of(client(make_settings(tmp_path)).get(spec.path).text)
    current = re.findall(r'<a [^>]*aria-current="page"[^>]*>', header)
    if spec.path == "/":
        assert current == []  # the brand is the way home
    elif spec.path == "/login":
        assert current == ['<a class="account" id="account-link" href="/login" aria-current="page">']
    else:
        assert len(current) == 1 and f'href="{spec.path}"' in current[0]
    links = re.findall(r'<nav class="links"[^>]*>(.*?)</nav>', header)[0]
    assert re.findall(r'>([^<]+)</a>', links) == ["Playground", "Scratchpad", "Usage", "Admin"]
    assert re.search(r'<a href="/admin"[^>]* class="admin-only">Admin</a>', links)
    assert 'data-testid="who"' in header and ">Sign in</span>" in header
    assert 'id="theme-toggle"' in header and 'aria-pressed="false"' in header


def test_head_sets_theme_before_paint_and_defers_libraries(tmp_path: Path) -> None:
    """boot.js (theme and signed-in state, before the first paint) comes before PyScript and
    is cache-busted; the chart and Markdown libraries never block the first paint."""
    c = client(make_settings(tmp_path))
    for path in ("/playground", "/dashboard"):
        html = c.get(path).text
        boot = re.search(r'<script src="(/static/boot\.js\?v=\w+)"></script>', html)
        assert boot and html.index(boot.group(0)) < html.index("/static/pyscript/")
        classic = re.findall(r'<script (?:defer )?src="/static/(?:vega|marked|dompurify|highlight)[^>]*>|'
                             r'<script src="[^"]*(?:vega|marked|purify|highlight)[^"]*" defer>', html)
        assert classic and all("defer" in tag for tag in classic), classic
        assert "workbench.css" not in html
    # Everything the page will need is asked for at once, not one round trip after another:
    # its Python files, MicroPython's wasm and PyScript's own chunks.
    preloaded = re.findall(r'<link rel="preload" as="fetch" crossorigin href="([^"]+)">', html)
    files = json.loads(re.search(r' config="([^"]+)"', html).group(1).replace("&quot;", '"'))["files"]
    assert set(files) <= {u.replace("&amp;", "&") for u in preloaded}
    if HAS_RUNTIME:
        assert any(u.endswith("/micropython.wasm") for u in preloaded)
        chunks = re.findall(r'<link rel="modulepreload" href="/static/pyscript/[^"]+/([^"/]+)">', html)
        assert any(c.startswith("core-") for c in chunks) and len(chunks) == 7
        for chunk in chunks:
            assert c.get(f"/static/pyscript/{chunk}").status_code == 200
    response = c.get(re.search(r'src="(/static/boot\.js\?v=\w+)"', html).group(1))
    assert response.status_code == 200 and "immutable" in response.headers["cache-control"]
    assert "prefers-color-scheme" in response.text


def test_config_says_which_providers_answer(tmp_path: Path) -> None:
    """Pages ask only the providers this relay has a key for (no 503 in the console); in --dev
    without an OpenAI key the demo model answers /openai."""
    keyed = make_settings(tmp_path, provider_keys={"openrouter": "k", "gemini": "g"})
    assert client(keyed).get("/config.json").json()["providers"] == ["gemini", "openrouter"]
    dev = make_settings(tmp_path, dev=True, provider_keys={"openrouter": "k"})
    assert client(dev).get("/config.json").json()["providers"] == ["openai", "openrouter"]
    assert client(make_settings(tmp_path)).get("/config.json").json()["providers"] == []


def test_usage_says_whether_the_caller_is_an_admin(make_client, settings, token) -> None:
    """/usage tells the pages whether to show the Admin link, so they never have to probe an
    admin endpoint (a 403 would be a red line in the browser's console)."""
    from tests.conftest import ADMIN, auth

    app = make_client(settings)  # the whole relay (conftest), not only the page routes
    assert app.get("/usage", headers=auth(token())).json()["admin"] is False
    assert app.get("/usage", headers=auth(token(ADMIN))).json()["admin"] is True
