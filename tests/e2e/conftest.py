"""Browser tests: Debian's Chromium (Playwright), a real relay (`python -m relay serve --dev`) on a
free port, a fake Google (certs + a stand-in for Google's sign-in script) and a third-party app
page on another port. Every test fails on a request leaving 127.0.0.1/localhost, on a page error
and on a console error that is not a plain failed HTTP status.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
import uvicorn
from playwright.sync_api import Browser, BrowserContext, Page, Route, expect
from starlette.applications import Starlette

from testkit.fakes.google import CERTS_PATH, FakeGoogle
from testkit.relay_process import clean_env, free_port, serve_relay
from tests.e2e.third_party import third_party_app

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
LOCAL_HOSTS = {"127.0.0.1", "localhost"}
GSI_URL = "https://accounts.google.com/gsi/client"
POLICY = """
[budget]
"*" = { limit = 0.10, days = 7 }
"@example.com" = { limit = 1.0, days = 7 }
"""


class ThreadServer:
    """An ASGI app on a real port, in a thread of the test process."""

    def __init__(self, app: Starlette, port: int):
        config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                lifespan="off", ws="none", access_log=False)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.port = port

    def __enter__(self) -> ThreadServer:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError(f"test server on port {self.port} did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=5)


# -- the browser -----------------------------------------------------------------------------
# The browser tests start their own relays and fakes (as subprocesses and servers of their own):
# the in-process fake providers of tests/conftest.py are not theirs.
@pytest.fixture(scope="session", autouse=True)
def _fake_server() -> None:
    return None


@pytest.fixture(scope="session")
def browser_type_launch_args() -> dict:
    """pytest-playwright launches Debian's Chromium (`playwright install` cannot download)."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run `bash scripts/setup.sh --browser`")
    return {
        "executable_path": CHROMIUM,
        "args": ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"],
    }


@dataclass
class Guard:
    """What went wrong in the browser during one test."""

    outside: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def watch(self, page: Page) -> None:
        page.on("pageerror", lambda error: self.errors.append(f"pageerror: {error}"))
        page.on("console", lambda msg: self._console(msg.type, msg.text))

    def _console(self, kind: str, text: str) -> None:
        # A 401/404 the page handles shows up as "Failed to load resource": not a bug here
        # (test_console.py, which allows none, runs the pages where nothing should fail).
        if kind == "error" and "Failed to load resource" not in text:
            self.errors.append(f"console error: {text}")

    def check(self) -> None:
        assert not self.outside, f"requests left 127.0.0.1: {self.outside}"
        assert not self.errors, f"errors in the browser: {self.errors}"


@pytest.fixture
def guard() -> Guard:
    return Guard()


def guarded_context(browser: Browser, guard: Guard, **options: object) -> BrowserContext:
    """A fresh browser profile whose requests may only reach 127.0.0.1/localhost; what goes
    wrong in its pages is collected in `guard`."""
    context = browser.new_context(**options)

    def only_local(route: Route) -> None:
        if urlsplit(route.request.url).hostname in LOCAL_HOSTS:
            route.continue_()
        else:
            guard.outside.append(route.request.url)
            route.abort()

    context.route("**/*", only_local)
    # With GOOGLE_CLIENT_ID set, /login loads Google's script: always a local stand-in here
    # (with no credential unless the test routes one).
    route_google(context, "")
    context.on("page", guard.watch)
    return context


@pytest.fixture
def context(browser: Browser, guard: Guard) -> Iterator[BrowserContext]:
    """A fresh browser profile whose requests may only reach 127.0.0.1/localhost."""
    context = guarded_context(browser, guard)
    yield context
    context.close()
    guard.check()


# -- servers ---------------------------------------------------------------------------------
@pytest.fixture
def upstream() -> None:
    """Overrides tests/conftest.py's autouse in-process fake upstream (which wants a FakeGoogle
    named `fake_google`, a (google, certs URL) pair here): browser tests run the relay as a
    subprocess with fakes of their own."""


@pytest.fixture(scope="session")
def fake_google() -> Iterator[tuple[FakeGoogle, str]]:
    google = FakeGoogle()
    port = free_port()
    with ThreadServer(google.certs_app(), port):
        yield google, f"http://127.0.0.1:{port}{CERTS_PATH}"


@dataclass(frozen=True)
class Apps:
    """The third-party app page, reachable under an allowed and an unapproved origin."""

    port: int

    @property
    def allowed(self) -> str:
        return f"http://localhost:{self.port}"

    @property
    def unapproved(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@pytest.fixture(scope="session")
def apps_port() -> int:
    return free_port()


@dataclass(frozen=True)
class Relay:
    url: str
    google: FakeGoogle
    data_dir: Path


@pytest.fixture(scope="session")
def relay(tmp_path_factory: pytest.TempPathFactory, fake_google: tuple[FakeGoogle, str],
          apps_port: int) -> Iterator[Relay]:
    """The real relay as users run it: `python -m relay serve --dev`, Google sign-in configured
    against the fake Google, the app page's localhost origin allowed."""
    if not (ROOT / "web" / "node_modules" / "@pyscript" / "core").is_dir():
        pytest.fail("web/node_modules is missing: run `bash scripts/setup.sh` (npm ci in web/)")
    google, certs_url = fake_google
    work = tmp_path_factory.mktemp("relay")
    (work / "aipipe.toml").write_text(POLICY)
    env = clean_env(
        AIPIPE_DATA_DIR=str(work / "data"),
        AIPIPE_CONFIG=str(work / "aipipe.toml"),
        AIPIPE_WEB_DIR=str(ROOT / "web"),
        GOOGLE_CLIENT_ID=google.client_id,
        AIPIPE_GOOGLE_CERTS_URL=certs_url,
        AIPIPE_ALLOWED_ORIGINS=Apps(apps_port).allowed,
    )
    with serve_relay(work, env, "--dev") as url:
        yield Relay(url, google, work / "data")


@pytest.fixture(scope="session")
def apps(relay: Relay, apps_port: int) -> Iterator[Apps]:
    """A page on another port that imports the relay's /aipipe.js."""
    with ThreadServer(third_party_app(relay.url), apps_port):
        yield Apps(apps_port)


# -- helpers ---------------------------------------------------------------------------------
def google_stand_in(credential: str) -> str:
    """Google's sign-in script, as far as the login page uses it: initialize() keeps the
    config, renderButton() draws a button that hands `credential` to the page's callback."""
    return """
window.google = { accounts: { id: {
  initialize(config) { window.__gsi = config; },
  renderButton(parent, options) {
    const button = document.createElement("button");
    button.textContent = "Sign in with Google (test stand-in)";
    button.dataset.testid = "google-stand-in";
    button.onclick = () => window.__gsi.callback({ credential: CREDENTIAL, select_by: "btn" });
    parent.appendChild(button);
  },
  prompt() {},
  cancel() {},
  disableAutoSelect() { window.__gsiAutoSelectDisabled = true; },
} } };
""".replace("CREDENTIAL", json.dumps(credential))


def route_google(context: BrowserContext, credential: str) -> None:
    """Serve the stand-in instead of Google's script (routes added later take precedence)."""
    body = google_stand_in(credential)
    context.route(GSI_URL + "*", lambda route: route.fulfill(
        status=200, content_type="text/javascript", body=body))


def wait_ready(page: Page, timeout: float = 15_000) -> None:
    page.wait_for_selector("body[data-ready='true']", state="attached", timeout=timeout)


def dev_sign_in(page: Page, email: str) -> None:
    page.get_by_test_id("dev-email").fill(email)
    page.get_by_test_id("dev-signin").click()


def choose_model(page: Page, key: str) -> None:
    """Pick a model in the playground's picker as a user does: open it, search, click."""
    page.get_by_test_id("model").click()
    page.get_by_test_id("model-search").fill(key.split(":", 1)[1])
    page.locator(f'[role="option"][data-value="{key}"]').click()
    expect(page.get_by_test_id("model")).to_have_attribute("data-value", key)



# -- the relay with provider keys, in front of the fake upstream (playground, dashboard, admin) --
UPSTREAM_POLICY = """
[budget]
"*" = { limit = 1.0, days = 7 }
"@tiny.example" = { limit = 0.01, days = 7 }
"""


@dataclass(frozen=True)
class UpstreamRelay:
    """A `--dev` relay whose OpenAI and OpenRouter keys point at the fake upstream."""

    url: str
    fake: Starlette  # the fake upstream app: `.state.received` holds what reached "providers"

    def token(self, email: str) -> str:
        """A token through the dev sign-in endpoint (what the login page's form calls)."""
        response = httpx.post(self.url + "/dev-login", json={"email": email}, timeout=10)
        response.raise_for_status()
        return response.json()["token"]

    def sign_in(self, context: BrowserContext, email: str) -> str:
        """Store the profile the login page would store, before any page script runs."""
        token = self.token(email)
        profile = json.dumps({"token": token, "email": email})
        context.add_init_script(  # (about:blank has no storage: only on the relay's pages)
            f"if (location.origin !== 'null' && !localStorage.getItem('aipipe')) "
            f"localStorage.setItem('aipipe', {json.dumps(profile)});")
        return token

    def chat(self, email: str, provider: str, model: str) -> None:
        """One chat call as `email` (to have something in the ledger)."""
        response = httpx.post(f"{self.url}/{provider}/v1/chat/completions",
                              headers={"Authorization": f"Bearer {self.token(email)}"},
                              json={"model": model, "messages": [{"role": "user", "content": "Hi"}]},
                              timeout=10)
        assert response.status_code == 200, response.text

    def set_day_cost(self, email: str, day: str, cost: str) -> None:
        """Overwrite a day's recorded cost through the admin API (to exhaust a budget)."""
        response = httpx.post(self.url + "/admin/cost", json={"email": email, "date": day,
                                                              "cost": cost},
                              headers={"Authorization": "Bearer " + self.token(ADMIN)}, timeout=10)
        response.raise_for_status()


ADMIN = "admin@example.com"  # an admin in --dev mode


@contextlib.contextmanager
def _serve_relay(work: Path, extra_env: dict[str, str]) -> Iterator[str]:
    """`python -m relay serve --dev` in `work` with a clean environment plus `extra_env`;
    yields its URL once it answers."""
    if not (ROOT / "web" / "node_modules" / "@pyscript" / "core").is_dir():
        pytest.fail("web/node_modules is missing: run `bash scripts/setup.sh` (npm ci in web/)")
    env = clean_env(AIPIPE_DATA_DIR=str(work / "data"), AIPIPE_WEB_DIR=str(ROOT / "web"), **extra_env)
    with serve_relay(work, env, "--dev") as url:
        yield url


@contextlib.contextmanager
def serve_upstream_relay(work: Path, providers: tuple[str, ...]) -> Iterator[UpstreamRelay]:
    """`python -m relay serve --dev` with the keys of `providers` set and their base URLs on the
    fake upstream (a real port: streaming timing matters), a policy with a tiny budget ($0.01)
    for anyone @tiny.example; admin@example.com is an admin (dev mode)."""
    from testkit.fakes.server import serve_asgi
    from testkit.fakes.upstream import DEFAULT_KEYS, create_fake_upstream

    fake = create_fake_upstream()
    (work / "aipipe.toml").write_text(UPSTREAM_POLICY)
    env = {"AIPIPE_CONFIG": str(work / "aipipe.toml")}
    with serve_asgi(fake) as fake_url:
        for provider in providers:
            env[f"{provider.upper()}_API_KEY"] = DEFAULT_KEYS[provider]
            env[f"AIPIPE_{provider.upper()}_BASE"] = f"{fake_url}/{provider}"
        with _serve_relay(work, env) as url:
            yield UpstreamRelay(url, fake)


@pytest.fixture(scope="session")
def upstream_relay(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UpstreamRelay]:
    """The relay with OpenAI and OpenRouter keys on the fake upstream (serve_upstream_relay)."""
    with serve_upstream_relay(tmp_path_factory.mktemp("upstream-relay"),
                              ("openai", "openrouter")) as relay:
        yield relay


@pytest.fixture(scope="session")
def dev_relay(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A bare `aipipe serve --dev` as a first-time user runs it: no keys (the built-in demo
    model answers), no Google, no policy file (everyone has the dev budget)."""
    work = tmp_path_factory.mktemp("dev-relay")
    with _serve_relay(work, {}) as url:
        yield url
