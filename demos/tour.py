"""A scripted tour of AI Pipe with Playwright: sign in, chat in the playground, open the usage
dashboard, saving a screenshot of each step and a video: tour.webm when Playwright's ffmpeg is
installed, else tour.webp, an animated WebP recorded with Chromium's own screencast.

    aipipe serve --dev &                      # any relay works; --dev gives the dev sign-in
    python demos/tour.py --url http://127.0.0.1:8787 --out demo-output

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
VIEWPORT = {"width": 1280, "height": 800}


@dataclass
class Tour:
    """One run: where it goes, where it saves, what went wrong on the way."""

    url: str
    out: Path
    email: str
    prompt: str
    model: str | None
    timeout_ms: float = 20_000
    shots: list[Path] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def shot(self, page: Page, name: str) -> None:
        path = self.out / f"{len(self.shots) + 1:02d}-{name}.png"
        page.screenshot(path=path, full_page=True)
        self.shots.append(path)
        print(f"  saved {path}")

    def open(self, page: Page, path: str) -> None:
        page.goto(self.url + path)
        page.wait_for_selector(READY, state="attached", timeout=self.timeout_ms)

    # -- the steps ---------------------------------------------------------------------------
    def sign_in(self, page: Page) -> None:
        print(f"1. sign in as {self.email}")
        self.open(page, "/login")
        self.shot(page, "login")
        if not page.get_by_test_id("dev-email").is_visible():
            raise SystemExit("This relay has no dev sign-in: run it with `aipipe serve --dev`.")
        page.get_by_test_id("dev-email").fill(self.email)
        page.get_by_test_id("dev-signin").click()
        page.get_by_test_id("token").wait_for(state="visible", timeout=self.timeout_ms)
        self.shot(page, "signed-in")

    def chat(self, page: Page) -> None:
        print("2. chat in the playground")
        self.open(page, "/playground")
        picker = page.get_by_test_id("model")
        picker.locator("option").first.wait_for(state="attached", timeout=self.timeout_ms)
        if self.model:
            picker.select_option(self.model)
        print(f"   model {picker.input_value()}")
        page.get_by_test_id("prompt").fill(self.prompt)
        page.get_by_test_id("send").click()
        page.wait_for_function(  # the reply has streamed in and its cost is shown
            "() => document.querySelector('[data-testid=cost]').textContent.startsWith('$')",
            timeout=self.timeout_ms)
        print(f"   reply cost {page.get_by_test_id('cost').inner_text()}")
        self.shot(page, "playground")
        page.get_by_test_id("show-code").click()
        page.get_by_test_id("code-panel").scroll_into_view_if_needed()
        self.shot(page, "show-code")

    def dashboard(self, page: Page) -> None:
        print("3. the usage dashboard")
        self.open(page, "/dashboard")
        page.locator("[data-testid=usage-chart] svg.marks").wait_for(timeout=self.timeout_ms)
        print(f"   spent {page.get_by_test_id('spend').inner_text()} of "
              f"{page.get_by_test_id('limit').inner_text()}")
        self.shot(page, "dashboard")

    # -- running -----------------------------------------------------------------------------
    def run(self, playwright: Playwright, video: str, headed: bool) -> Path | None:
        self.out.mkdir(parents=True, exist_ok=True)
        browser = launch(playwright, headed)
        try:
            return self._run(browser, video)
        finally:
            browser.close()

    def _run(self, browser: Browser, video: str) -> Path | None:
        kind = video_kind(browser, video)
        options: dict = {"viewport": VIEWPORT}
        if kind == "playwright":
            options.update(record_video_dir=str(self.out / "video"), record_video_size=VIEWPORT)
        context = browser.new_context(**options)
        context.route("**/*", self._only_the_relay)
        page = context.new_page()
        page.on("pageerror", lambda error: self.errors.append(str(error)))
        page.set_default_timeout(self.timeout_ms)
        cast = Screencast(page, VIEWPORT) if kind == "screencast" else None
        if cast is not None:
            cast.start()
        try:
            self.sign_in(page)
            self.chat(page)
            self.dashboard(page)
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
    parser.add_argument("--prompt", default="In two sentences: what is a token in an LLM?")
    parser.add_argument("--model", help="picker value, e.g. openai:gpt-4.1-nano (default: the first)")
    parser.add_argument("--video", choices=("auto", "playwright", "screencast", "on", "off"),
                        default="auto",
                        help="record the tour: tour.webm with Playwright's ffmpeg (playwright, or "
                             "its alias on), tour.webp from Chromium's screencast (screencast); "
                             "auto: playwright when its ffmpeg is installed, else screencast")
    parser.add_argument("--headed", action="store_true", help="show the browser window")
    parser.add_argument("--strict", action="store_true",
                        help="fail on a page error or a blocked outside request (for CI)")
    args = parser.parse_args(argv)
    tour = Tour(args.url.rstrip("/"), args.out, args.email, args.prompt, args.model)
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
