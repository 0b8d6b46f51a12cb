"""A scripted tour of AI Pipe with Playwright: every page in every state a student and an admin
meet, on a laptop (1280×800) and on a phone (390×844), saved as screenshots, plus a video of the
laptop run: tour.webm when Playwright's ffmpeg is installed, else tour.webp, an animated WebP
recorded with Chromium's own screencast.

    aipipe serve --dev &                      # any relay works; --dev gives the dev sign-in
    python demos/tour.py --url http://127.0.0.1:8787 --out demo-output

Screenshots go to <out>/desktop/NN-state.png and <out>/phone/NN-state.png (STATES lists them).
It drives the pages only through their automation hooks (SPEC §10: data-testid attributes and
body[data-ready]), so it is a starting point for scripting your own demo. Requests to any host
other than the relay's are blocked (and listed), so a tour never depends on the internet.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from playwright.sync_api import Browser, Error, Page, Playwright, Route, sync_playwright
from screencast import Screencast  # (demos/ is on sys.path when this file runs as a script)

CHROMIUM = "/usr/bin/chromium"  # Debian's; Playwright's own browser is used when absent
READY = "body[data-ready='true']"
DEVICES = {
    "desktop": {"viewport": {"width": 1280, "height": 800}},
    "phone": {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True},
}
# Every state the tour saves, in order (the file is NN-<state>.png in each device's folder).
STATES = ("home", "sign-in", "account", "playground", "model-picker", "reply", "settings",
          "show-code", "playground-dark", "scratchpad", "scratchpad-run", "usage-loading", "usage",
          "admin-refused", "usage-empty", "admin")


@dataclass
class Tour:
    """One run: where it goes, where it saves, what went wrong on the way."""

    url: str
    out: Path
    email: str
    prompt: str
    model: str | None
    admin: str = "admin@example.com"
    newcomer: str = "newcomer@example.com"
    timeout_ms: float = 20_000
    python_ms: float = 180_000  # the scratchpad's first Run starts Pyodide: seconds, cold
    shots: list[Path] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def shot(self, page: Page, device: str, state: str) -> None:
        folder = self.out / device
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{STATES.index(state) + 1:02d}-{state}.png"
        page.wait_for_timeout(200)  # transitions (the budget bar) settle
        page.screenshot(path=path, full_page=True, animations="disabled", caret="initial")
        self.shots.append(path)
        print(f"  saved {path}")

    def open(self, page: Page, path: str) -> None:
        page.goto(self.url + path)
        page.wait_for_selector(READY, state="attached", timeout=self.timeout_ms)

    # -- the steps ---------------------------------------------------------------------------
    def sign_in(self, page: Page, device: str, email: str, shoot: bool = True) -> None:
        self.open(page, "/login")
        if page.get_by_test_id("signout").is_visible():
            page.get_by_test_id("signout").click()
        if not page.get_by_test_id("dev-email").is_visible():
            raise SystemExit("This relay has no dev sign-in: run it with `aipipe serve --dev`.")
        if shoot:
            self.shot(page, device, "sign-in")
        page.get_by_test_id("dev-email").fill(email)
        page.get_by_test_id("dev-signin").click()
        page.get_by_test_id("token").wait_for(state="visible", timeout=self.timeout_ms)
        page.wait_for_function(  # the budget is filled in
            "() => !document.querySelector('[data-testid=budget-left] .skeleton')")

    def welcome(self, page: Page, device: str) -> None:
        print(f"1. [{device}] the home page and signing in as {self.email}")
        self.open(page, "/")
        self.shot(page, device, "home")
        self.sign_in(page, device, self.email)
        self.shot(page, device, "account")

    def chat(self, page: Page, device: str) -> None:
        print(f"2. [{device}] chat in the playground")
        self.open(page, "/playground")
        picker = page.get_by_test_id("model")
        page.wait_for_function("() => document.querySelector('[data-testid=model]').dataset.value")
        self.shot(page, device, "playground")
        picker.click()
        search = page.get_by_test_id("model-search")
        if self.model:
            search.fill(self.model.split(":", 1)[1])
            page.locator(f'[role="option"][data-value="{self.model}"]').wait_for()
        self.shot(page, device, "model-picker")
        if self.model:
            page.locator(f'[role="option"][data-value="{self.model}"]').click()
        else:
            search.press("Escape")
        print(f"   model {picker.get_attribute('data-value')}")
        page.get_by_test_id("prompt").fill(self.prompt)
        page.get_by_test_id("send").click()
        page.wait_for_function(  # the reply has streamed in and its cost is shown
            "() => (document.querySelector('[data-testid=cost]') || {textContent: ''})"
            ".textContent.startsWith('$')", timeout=self.timeout_ms)
        print(f"   reply cost {page.get_by_test_id('cost').inner_text()}")
        toggle = page.get_by_test_id("settings-toggle")
        if toggle.get_attribute("aria-expanded") == "true":  # (open by default on a laptop)
            toggle.click()
        page.get_by_test_id("system").wait_for(state="hidden")
        self.shot(page, device, "reply")
        toggle.click()
        page.get_by_test_id("system").wait_for(state="visible")
        self.shot(page, device, "settings")
        if device == "phone":
            page.keyboard.press("Escape")
        page.get_by_test_id("show-code").click()
        page.get_by_test_id("code-panel").wait_for(state="visible")
        self.shot(page, device, "show-code")
        page.keyboard.press("Escape")
        page.get_by_test_id("theme-toggle").click()
        self.shot(page, device, "playground-dark")
        page.get_by_test_id("theme-toggle").click()

    def scratchpad(self, page: Page, device: str) -> None:
        print(f"3. [{device}] Python in the scratchpad: a streamed answer and what the run cost")
        self.open(page, "/scratchpad")
        page.get_by_test_id("examples").select_option("stream")
        self.shot(page, device, "scratchpad")
        page.get_by_test_id("run").click()
        page.wait_for_function(  # the run is over and its summary shows its cost
            "() => document.body.dataset.running === 'false' && document.querySelector("
            "'[data-testid=run-cost]').textContent.includes('$')", timeout=self.python_ms)
        print(f"   run {page.get_by_test_id('run-cost').inner_text()}")
        self.shot(page, device, "scratchpad-run")

    def usage(self, page: Page, device: str) -> None:
        print(f"4. [{device}] the usage dashboard, while it loads and once it has")
        held: list[Route] = []

        def hold_first(route: Route) -> None:  # the page's first /usage waits for the shot
            if held:
                route.fallback()
            else:
                held.append(route)

        page.route("**/usage", hold_first)
        page.goto(self.url + "/dashboard")
        page.wait_for_function("() => document.querySelector('[data-testid=spend] .skeleton')")
        while not held:
            page.wait_for_timeout(50)
        self.shot(page, device, "usage-loading")
        held[0].fallback()  # on to the context's route (only the relay), then the relay
        page.wait_for_selector(READY, state="attached", timeout=self.timeout_ms)
        page.unroute("**/usage", hold_first)
        page.locator("[data-testid=usage-chart] svg.marks").wait_for(timeout=self.timeout_ms)
        print(f"   spent {page.get_by_test_id('spend').inner_text()} of "
              f"{page.get_by_test_id('limit').inner_text()}")
        self.shot(page, device, "usage")

    def others(self, page: Page, device: str) -> None:
        print(f"5. [{device}] the admin page: refused to a student, then as {self.admin}")
        self.open(page, "/admin")
        self.shot(page, device, "admin-refused")
        self.sign_in(page, device, self.newcomer, shoot=False)
        self.open(page, "/dashboard")
        self.shot(page, device, "usage-empty")
        self.sign_in(page, device, self.admin, shoot=False)
        self.open(page, "/admin")
        page.locator("[data-testid=admin-chart] svg.marks, [data-testid=admin-chart] .empty-state"
                     ).first.wait_for(timeout=self.timeout_ms)
        if page.get_by_test_id("admin-refused").is_visible():
            print(f"   ({self.admin} is not an admin on this relay: see --admin)")
        self.shot(page, device, "admin")

    # -- running -----------------------------------------------------------------------------
    def run(self, playwright: Playwright, video: str, headed: bool) -> Path | None:
        self.out.mkdir(parents=True, exist_ok=True)
        browser = launch(playwright, headed)
        try:
            kind = video_kind(browser, video)
            recorded = self._device(browser, "desktop", kind)
            self._device(browser, "phone", None)
            return recorded
        finally:
            browser.close()

    def _device(self, browser: Browser, device: str, kind: str | None) -> Path | None:
        options: dict = dict(DEVICES[device])
        viewport = options["viewport"]
        if kind == "playwright":
            options.update(record_video_dir=str(self.out / "video"), record_video_size=viewport)
        context = browser.new_context(**options)
        context.route("**/*", self._only_the_relay)
        page = context.new_page()
        page.on("pageerror", lambda error: self.errors.append(str(error)))
        page.set_default_timeout(self.timeout_ms)
        cast = Screencast(page, viewport) if kind == "screencast" else None
        if cast is not None:
            cast.start()
        try:
            self.welcome(page, device)
            self.chat(page, device)
            self.scratchpad(page, device)
            self.usage(page, device)
            self.others(page, device)
        finally:
            if cast is not None:
                cast.stop()
            context.close()  # writes Playwright's video
        if cast is not None:
            return self._save_screencast(cast)
        if kind != "playwright" or page.video is None:
            return None
        target = self.out / "tour.webm"
        shutil.move(page.video.path(), target)
        shutil.rmtree(self.out / "video", ignore_errors=True)
        print(f"  saved {target}")
        return target

    def _save_screencast(self, cast: Screencast) -> Path | None:
        target = self.out / "tour.webp"
        count = cast.save(target)
        if not count:
            print("  (no video: the browser painted no frame)")
            return None
        print(f"  saved {target} ({count} frames, {cast.stopped_at - cast.frames[0].at:.1f} s)")
        return target

    def _only_the_relay(self, route: Route) -> None:
        if urlsplit(route.request.url).netloc == urlsplit(self.url).netloc:
            route.continue_()
        else:
            self.blocked.append(route.request.url)
            route.abort()


def launch(playwright: Playwright, headed: bool) -> Browser:
    options: dict = {"headless": not headed, "args": ["--no-sandbox", "--disable-gpu"]}
    if Path(CHROMIUM).exists():
        options["executable_path"] = CHROMIUM
    return playwright.chromium.launch(**options)


def video_kind(browser: Browser, video: str) -> str | None:
    """--video → how to record: "playwright" (WebM, needs its ffmpeg), "screencast" (animated
    WebP from Chromium's CDP screencast, needs only Pillow) or None."""
    if video == "off":
        return None
    if video in ("on", "playwright"):
        return "playwright"
    if video == "screencast":
        return "screencast"
    return "playwright" if has_video_encoder(browser) else "screencast"


def has_video_encoder(browser: Browser) -> bool:
    """Playwright records video with its own ffmpeg (`playwright install ffmpeg`)."""
    folder = Path.cwd() / ".tour-video-probe"
    context = browser.new_context(record_video_dir=str(folder))
    try:
        context.new_page()  # the encoder starts with the first page
    except Error as error:
        if "ffmpeg" not in str(error):
            raise
        print("  (Playwright's ffmpeg is missing, so the video is Chromium's screencast as an "
              "animated WebP; `playwright install ffmpeg` gives a WebM)")
        return False
    finally:
        context.close()
        shutil.rmtree(folder, ignore_errors=True)
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:8787", help="the relay's base URL")
    parser.add_argument("--out", type=Path, default=Path("demo-output"),
                        help="folder for the screenshots and video")
    parser.add_argument("--email", default="student@example.com", help="who signs in (dev)")
    parser.add_argument("--admin", default="admin@example.com",
                        help="an admin's email, for the admin page (dev sign-in)")
    parser.add_argument("--prompt", default="In two sentences: what is a token in an LLM?")
    parser.add_argument("--model", help="picker value, e.g. openai:gpt-4.1-nano (default: the "
                                        "one the playground picks)")
    parser.add_argument("--video", choices=("auto", "playwright", "screencast", "on", "off"),
                        default="auto",
                        help="record the laptop run: tour.webm with Playwright's ffmpeg "
                             "(playwright, or its alias on), tour.webp from Chromium's screencast "
                             "(screencast); auto: playwright when its ffmpeg is installed, else "
                             "screencast")
    parser.add_argument("--headed", action="store_true", help="show the browser window")
    parser.add_argument("--strict", action="store_true",
                        help="fail on a page error or a blocked outside request (for CI)")
    args = parser.parse_args(argv)
    tour = Tour(args.url.rstrip("/"), args.out, args.email, args.prompt, args.model, args.admin)
    with sync_playwright() as playwright:
        tour.run(playwright, args.video, args.headed)
    for url in tour.blocked:
        print(f"blocked a request outside the relay: {url}", file=sys.stderr)
    for error in tour.errors:
        print(f"page error: {error}", file=sys.stderr)
    print(f"{len(tour.shots)} screenshots in {args.out}")
    return 1 if args.strict and (tour.blocked or tour.errors) else 0


if __name__ == "__main__":
    sys.exit(main())
