"""/scratchpad in a real browser against a bare `aipipe serve --dev` (its demo model streams like a
real one): sign in, write Python that calls the model through `aipipe`, run it on Pyodide in a Web
Worker, see the answer stream in and the spend change in /usage; tracebacks, Stop on an endless
loop, the signed-out page and the playground's link. Every request must stay on 127.0.0.1."""

from __future__ import annotations

import json
from decimal import Decimal
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.e2e.conftest import Guard, dev_sign_in, guarded_context, wait_ready

pytestmark = pytest.mark.e2e
PYTHON_START = 120_000  # ms: a cold Pyodide start on a busy 2-core machine takes 5-30 s
DEMO_REPLY = "[AI Pipe demo model]"
CELL = """import aipipe
print("model:", aipipe.model, "base:", aipipe.base_url == BASE)
answer = aipipe.chat("first question")
print("chat:", answer)
print("stream:", end=" ")
for piece in aipipe.stream("second question"):
    print(piece, end="|")
print()
"""
XHR_CELL = """import aipipe, scratch_worker
usual = aipipe.http
aipipe.configure(http=scratch_worker.BrowserHTTP(use_fetch=False))
try:
    print("chat:", aipipe.chat("first"))
    print("".join(aipipe.stream("over xhr")), end="|")
finally:
    aipipe.configure(http=usual)
"""
# Records each time the output area grows: (ms since the run started, characters shown).
WATCH_OUTPUT = """() => {
  window.__growth = [];
  const output = document.querySelector('[data-testid="output"]');
  const start = performance.now();
  new MutationObserver(() => window.__growth.push([performance.now() - start,
                                                   output.textContent.length]))
    .observe(output, { childList: true, subtree: true, characterData: true });
}"""


def sign_in_to_scratchpad(page: Page, relay_url: str, email: str) -> str:
    """The dev sign-in form, sent back to /scratchpad; returns the token the page holds."""
    page.goto(relay_url + "/login?redirect=/scratchpad")
    wait_ready(page)
    dev_sign_in(page, email)
    page.wait_for_url(relay_url + "/scratchpad*")
    wait_ready(page)
    expect(page).to_have_url(relay_url + "/scratchpad")  # no token left in the address bar
    return json.loads(page.evaluate("localStorage.getItem('aipipe')"))["token"]


# Records every change of body[data-running] (a quick cell may start and end between two polls).
WATCH_RUNNING = """() => {
  window.__running = [];
  if (window.__watching) return;
  window.__watching = true;
  new MutationObserver(() => window.__running.push(document.body.dataset.running))
    .observe(document.body, { attributes: true, attributeFilter: ["data-running"] });
}"""


def run_cell(page: Page, code: str, timeout: float = PYTHON_START) -> None:
    """Type `code`, press Run, wait until the cell has started and ended."""
    page.get_by_test_id("code").fill(code)
    page.evaluate(WATCH_RUNNING)
    page.get_by_test_id("run").click()
    page.wait_for_function("window.__running.includes('true') && "
                           "window.__running[window.__running.length - 1] === 'false'",
                           timeout=timeout)


def usage(relay_url: str, token: str) -> dict:
    response = httpx.get(relay_url + "/usage", headers={"Authorization": "Bearer " + token},
                         timeout=10)
    response.raise_for_status()
    return response.json()


def test_a_cell_calls_the_demo_model_and_the_spend_shows_in_usage(
        dev_relay: str, context: BrowserContext, page: Page) -> None:
    """A student signs in, types a cell that calls the demo model through aipipe.chat and
    aipipe.stream, and runs it: the answer appears in the output, the streamed one piece by piece
    while it arrives, the run's cost shows, and /usage has grown by exactly that much. The
    worker fetches only the Pyodide files the page declares."""
    runtime_files: list[str] = []
    context.on("request", lambda request: runtime_files.append(urlsplit(request.url).path)
               if "/static/pyodide/" in request.url else None)
    token = sign_in_to_scratchpad(page, dev_relay, "pad-student@example.com")
    expect(page.locator("#default-model")).to_have_text("aipipe-demo")
    before = usage(dev_relay, token)

    page.get_by_test_id("code").fill(CELL.replace("BASE", json.dumps(dev_relay)))
    assert page.get_by_test_id("code").evaluate("e => e.value") == \
        CELL.replace("BASE", json.dumps(dev_relay))
    page.evaluate(WATCH_OUTPUT)
    page.get_by_test_id("run").click()
    expect(page.locator("body")).to_have_attribute("data-running", "true")
    page.wait_for_selector("body[data-running='false']", state="attached", timeout=PYTHON_START)

    text = page.get_by_test_id("output").inner_text()
    assert "model: aipipe-demo base: True\n" in text
    assert "chat: " + DEMO_REPLY in text and "You said: “first question”" in text
    streamed = text.split("stream: ", 1)[1]
    assert streamed.startswith("[AI |") and "You |said: |“second |question”" in streamed
    # the stream reached the page while it was being written, not all at once at the end
    growth = page.evaluate("window.__growth")
    chat_done = next(n for _t, n in growth if n >= text.index("stream: "))
    assert len({n for _t, n in growth if n > chat_done}) >= 5, growth

    summary = page.get_by_test_id("run-cost").inner_text()
    assert summary.startswith("Done in ") and "2 calls" in summary
    after = usage(dev_relay, token)
    rows = httpx.get(dev_relay + "/usage/requests?limit=10", timeout=10,
                     headers={"Authorization": "Bearer " + token}).json()["data"]
    assert [r["model"] for r in rows] == ["aipipe-demo", "aipipe-demo"]
    spent = Decimal(str(after["cost"])) - Decimal(str(before["cost"]))
    assert spent > 0 and spent == sum(Decimal(str(r["cost"])) for r in rows)
    expect(page.get_by_test_id("budget-left")).to_contain_text(" left")

    # Pyodide took the WebAssembly module the page compiled (cached by Chromium for next time)
    expect(page.get_by_test_id("python-status")).to_have_attribute("data-wasm", "page")
    declared = json.loads(page.locator("#aipipe-worker").text_content())["files"]
    fetched = {path.rsplit("/", 1)[1] for path in runtime_files}
    assert fetched == set(declared), runtime_files


def test_a_traceback_then_stop_on_an_endless_loop_and_the_page_stays_usable(
        dev_relay: str, context: BrowserContext, page: Page) -> None:
    """A failing cell shows its traceback (the cell's own line) and the page runs the next
    cell; an endless loop is stopped by Stop at once (Python restarts in a fresh worker), and
    the cells after that run too — including calls over synchronous XMLHttpRequest, the path
    of browsers without JSPI."""
    sign_in_to_scratchpad(page, dev_relay, "pad-errors@example.com")
    run_cell(page, "print('before')\ndef f():\n    return {}['missing']\nf()\n")
    output = page.get_by_test_id("output")
    expect(output).to_contain_text("Traceback (most recent call last):")
    expect(output).to_contain_text('File "<cell>", line 3, in f')
    expect(output).to_contain_text("KeyError: 'missing'")
    assert output.inner_text().startswith("before\n")
    expect(page.get_by_test_id("run-cost")).to_have_text("Failed: KeyError: 'missing' · "
                                                        "no model calls")

    run_cell(page, "print(6 * 7)")
    expect(output).to_have_text("42\n")

    page.get_by_test_id("code").fill("print('looping', flush=True)\nwhile True:\n    pass\n")
    page.get_by_test_id("run").click()
    expect(output).to_contain_text("looping")
    expect(page.get_by_test_id("stop")).to_be_enabled()
    page.get_by_test_id("stop").click()
    expect(page.locator("body")).to_have_attribute("data-running", "false")
    expect(page.get_by_test_id("run-cost")).to_contain_text("Stopped after")
    expect(page.get_by_test_id("run")).to_be_enabled()

    run_cell(page, "import sys\nprint('alive', sys.version_info[:2] >= (3, 12))")
    expect(output).to_have_text("alive True\n")
    expect(page.get_by_test_id("python-status")).to_contain_text("ready (Pyodide")

    # What a browser without JSPI does: synchronous XMLHttpRequest (a stream arrives whole)
    run_cell(page, XHR_CELL)
    expect(output).to_contain_text("chat: " + DEMO_REPLY)
    expect(output).to_contain_text("You said: “over xhr”")
    expect(page.get_by_test_id("run-cost")).to_contain_text("2 calls · $0.")


def test_signed_out_the_page_says_how_to_sign_in(dev_relay: str, page: Page) -> None:
    """Without a profile the page explains and links to sign-in, shows no editor, starts no
    Python, and is ready at once."""
    workers: list[str] = []
    page.on("worker", lambda worker: workers.append(worker.url))
    page.goto(dev_relay + "/scratchpad")
    wait_ready(page)
    expect(page.get_by_test_id("signin-needed")).to_be_visible()
    expect(page.get_by_test_id("signin-needed").get_by_role("link")).to_have_attribute(
        "href", "/login?redirect=/scratchpad")
    expect(page.get_by_test_id("run")).to_be_hidden()
    assert workers == []


def test_the_playgrounds_show_code_opens_the_request_in_the_scratchpad(
        dev_relay: str, context: BrowserContext, page: Page) -> None:
    """The playground's "Show code" links to the scratchpad with the same request as aipipe
    code in the editor; the code is then kept there between visits."""
    sign_in_to_scratchpad(page, dev_relay, "pad-linker@example.com")
    page.goto(dev_relay + "/playground")
    wait_ready(page)
    page.get_by_test_id("system").fill("Answer briefly.")
    page.get_by_test_id("prompt").fill("What is a haiku?")
    page.get_by_test_id("show-code").click()
    page.get_by_test_id("open-scratchpad").click()
    page.wait_for_url(dev_relay + "/scratchpad*")
    wait_ready(page)
    code = page.get_by_test_id("code").evaluate("e => e.value")
    assert code.startswith("import aipipe\n")
    assert '"content": "Answer briefly."' in code and '"content": "What is a haiku?"' in code
    assert 'model="aipipe-demo"' in code and "aipipe.stream(" in code
    expect(page.get_by_test_id("run-cost")).to_contain_text("came from a link")
    assert page.locator("body").get_attribute("data-running") == "false"  # shown, not run
    expect(page).to_have_url(dev_relay + "/scratchpad")
    page.reload()
    wait_ready(page)
    assert page.get_by_test_id("code").evaluate("e => e.value") == code


EDITOR_COLOURS = """() => [getComputedStyle(document.querySelector('.cm-editor')).backgroundColor,
                         getComputedStyle(document.querySelector('.cm-gutters')).backgroundColor,
                         getComputedStyle(document.querySelector('.cm-editor .tok-keyword')).color]"""


def test_on_a_phone_by_keyboard_and_in_both_themes(dev_relay: str, browser: Browser,
                                                   guard: Guard) -> None:
    """On a 390×844 phone the scratchpad is one of the pages: the shared header marks it, nothing
    scrolls sideways, the budget shows. The theme switch recolours the editor (its background,
    gutter and Python keywords) with the page. Run pressed from the keyboard hands focus to Stop,
    and Stop back to Run; Ctrl+Enter runs from the editor and from anywhere else on the page."""
    context = guarded_context(browser, guard, viewport={"width": 390, "height": 844},
                              is_mobile=True, has_touch=True, color_scheme="light")
    page = context.new_page()
    sign_in_to_scratchpad(page, dev_relay, "pad-thumbs@example.com")
    expect(page.get_by_role("link", name="Scratchpad", exact=True)).to_have_attribute(
        "aria-current", "page")
    expect(page.get_by_test_id("budget-left")).to_have_text("$1.00 of $1.00 left")
    assert page.evaluate("document.documentElement.scrollWidth <= innerWidth")

    light = page.evaluate(EDITOR_COLOURS)
    page.get_by_test_id("theme-toggle").click()
    expect(page.locator("html[data-theme=dark]")).to_have_count(1)
    dark = page.evaluate(EDITOR_COLOURS)
    assert all(a != b for a, b in zip(light, dark, strict=True)), (light, dark)

    page.get_by_test_id("code").fill("print('looping', flush=True)\nwhile True:\n    pass\n")
    page.get_by_test_id("run").focus()
    page.keyboard.press("Enter")
    expect(page.get_by_test_id("output")).to_contain_text("looping", timeout=PYTHON_START)
    expect(page.get_by_test_id("stop")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.get_by_test_id("run-cost")).to_contain_text("Stopped after")
    expect(page.get_by_test_id("run")).to_be_focused()

    page.get_by_test_id("code").fill("print(6 * 7)")
    page.get_by_test_id("code").press("Control+Enter")
    expect(page.get_by_test_id("output")).to_have_text("42\n", timeout=PYTHON_START)
    expect(page.locator("body")).to_have_attribute("data-running", "false")
    page.get_by_test_id("code").fill("print('from anywhere')")
    page.get_by_test_id("output").focus()
    page.keyboard.press("Control+Enter")
    expect(page.get_by_test_id("output")).to_have_text("from anywhere\n", timeout=PYTHON_START)
    context.close()
    guard.check()
