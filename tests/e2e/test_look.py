"""Every page, in every state a student or an admin meets, at 1280×800 and on a 390×844 phone:
no sideways scrolling, no text drawn over other text, no text cut off (tests/e2e/audit.py), and
axe-core finds no serious or critical accessibility problem, in the light and the dark theme.
The relay is the real one in front of the fake providers, with a little usage recorded first."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.e2e.audit import DESKTOP, PHONE, axe_violations, layout_problems
from tests.e2e.conftest import ADMIN, Guard, UpstreamRelay, guarded_context, wait_ready

pytestmark = pytest.mark.e2e
STUDENT = "look.student@example.com"
NEWCOMER = "look.newcomer@example.com"
CHAT = "**/v1/chat/completions"
REPLY = ("Sure — here is a **function** and how to use it:\n\n```python\ndef greet(name: str) -> str:\n"
         '    """Say hello."""\n    return f"Hello, {name}! " + "a rather long line " * 6\n```\n\n'
         "1. Call `greet(\"Ada\")`.\n2. Print what it returns.\n\n| model | price |\n|---|---|\n"
         "| gpt-4o-mini | $0.15 / $0.60 |\n\nThat is all.")


@pytest.fixture(scope="module")
def relay(upstream_relay: UpstreamRelay) -> UpstreamRelay:
    """The shared relay with some spend: the student on two models, and twelve classmates (so
    the admin chart by user has more series than it names)."""
    upstream_relay.chat(STUDENT, "openai", "gpt-4o-mini")
    upstream_relay.chat(STUDENT, "openrouter", "anthropic/claude-3.5-haiku")
    for i in range(12):
        upstream_relay.chat(f"look.classmate{i:02d}@school.example", "openrouter",
             "anthropic/claude-3.5-haiku" if i % 2 else "openai/gpt-4o-mini")
    return upstream_relay


# -- what is done on a page before it is looked at ---------------------------------------------
def markdown_events(text: str) -> str:
    chunks = [text[i:i + 9] for i in range(0, len(text), 9)]
    events = "".join("data: " + json.dumps({"choices": [{"index": 0, "delta": {"content": c}}]})
                     + "\n\n" for c in chunks)
    usage = {"prompt_tokens": 12, "completion_tokens": 80}
    return events + "data: " + json.dumps({"choices": [], "usage": usage}) + "\n\ndata: [DONE]\n\n"


def with_reply(page: Page) -> None:
    page.route(CHAT, lambda route: route.fulfill(
        status=200, headers={"content-type": "text/event-stream"}, body=markdown_events(REPLY)))
    page.get_by_test_id("prompt").fill("Write me a greeting function, and explain how to use it "
                                       "in a notebook, step by step")
    page.get_by_test_id("send").click()
    expect(page.get_by_test_id("cost")).to_contain_text("$")
    page.unroute(CHAT)


def picker_open(page: Page) -> None:
    page.get_by_test_id("model").click()
    expect(page.get_by_test_id("model-search")).to_be_focused()


def settings_open(page: Page) -> None:
    toggle = page.get_by_test_id("settings-toggle")
    if toggle.get_attribute("aria-expanded") != "true":
        toggle.click()
    expect(page.get_by_test_id("system")).to_be_visible()


def code_open(page: Page) -> None:
    page.get_by_test_id("show-code").click()
    expect(page.get_by_test_id("snippet-code-curl")).to_be_visible()


def chart_drawn(page: Page) -> None:
    expect(page.locator("[data-testid$=chart] svg.marks, [data-testid$=chart] .empty-state")
           ).to_have_count(1)


# A cell that streams a reply, prints a table-like line and fails at the end: the output with its
# stream, a traceback and the run's summary (its calls and their cost).
CELL = """import aipipe

for piece in aipipe.stream("Write a haiku about the sea."):
    print(piece, end="")
print()
print(f"{'left':<12}{aipipe.usage()['remaining']:>10}")
print(aipipe.chat("One more?", max_tokens=20)[:60])
1 / 0
"""
PYTHON_START = 120_000  # ms: Pyodide's start in a fresh profile on a busy 2-core machine


def ran_a_cell(page: Page) -> None:
    page.get_by_test_id("code").fill(CELL)
    page.get_by_test_id("run").click()
    expect(page.get_by_test_id("run-cost")).to_contain_text("2 calls", timeout=PYTHON_START)
    expect(page.get_by_test_id("output")).to_contain_text("ZeroDivisionError")
    expect(page.locator("body")).to_have_attribute("data-running", "false")


def by_user(page: Page) -> None:
    chart_drawn(page)
    page.get_by_test_id("chart-group").get_by_role("button", name="User").click()
    expect(page.locator("#admin-legend")).to_contain_text("more users")


@dataclass(frozen=True)
class State:
    name: str
    email: str | None  # who is signed in
    path: str
    then: Callable[[Page], None] | None = None


STATES = (
    State("home", None, "/"),
    State("sign-in", None, "/login"),
    State("playground, signed out", None, "/playground"),
    State("usage, signed out", None, "/dashboard"),
    State("admin, signed out", None, "/admin"),
    State("scratchpad, signed out", None, "/scratchpad"),
    State("home", STUDENT, "/"),
    State("account", STUDENT, "/login"),
    State("playground", STUDENT, "/playground"),
    State("playground with a reply", STUDENT, "/playground", with_reply),
    State("model picker", STUDENT, "/playground", picker_open),
    State("settings", STUDENT, "/playground", settings_open),
    State("code", STUDENT, "/playground", code_open),
    State("scratchpad", STUDENT, "/scratchpad"),
    State("scratchpad after a run", STUDENT, "/scratchpad", ran_a_cell),
    State("usage", STUDENT, "/dashboard", chart_drawn),
    State("usage, nothing spent", NEWCOMER, "/dashboard", chart_drawn),
    State("admin, refused", STUDENT, "/admin"),
    State("admin", ADMIN, "/admin", chart_drawn),
    State("admin by user", ADMIN, "/admin", by_user),
)


@pytest.fixture
def contexts(browser: Browser, relay: UpstreamRelay, guard: Guard) -> Iterator[Callable]:
    """contexts(viewport, email, scheme) -> a browser profile (signed in as `email`), made once
    per combination and closed at the end; none may log an error or leave 127.0.0.1."""
    made: dict[tuple, BrowserContext] = {}

    def get(viewport: dict, email: str | None, scheme: str = "light") -> BrowserContext:
        key = (viewport["width"], email, scheme)
        if key not in made:
            made[key] = guarded_context(browser, guard, viewport=viewport, color_scheme=scheme)
            if email:
                relay.sign_in(made[key], email)
        return made[key]

    yield get
    for context in made.values():
        context.close()
    guard.check()


def look_at(context: BrowserContext, relay: UpstreamRelay, state: State) -> Page:
    page = context.new_page()
    page.goto(relay.url + state.path)
    wait_ready(page)
    if state.then:
        state.then(page)
    page.wait_for_timeout(150)  # let transitions (the budget bar) settle
    return page


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["1280x800", "390x844"])
def test_every_page_fits_the_screen(relay: UpstreamRelay, contexts: Callable,
                                    viewport: dict) -> None:
    """In every state, on a laptop and on a phone: the page never scrolls sideways, no text
    overlaps other text (chart axis labels included) and none is cut off."""
    problems = []
    for state in STATES:
        page = look_at(contexts(viewport, state.email), relay, state)
        problems += [f"{state.name} ({state.path}): {p}" for p in layout_problems(page)]
        if state.path == "/playground" and state.email:
            # The chat fills the window: the composer sits at the bottom, nothing below it.
            composer = page.locator(".composer").bounding_box()
            assert composer["y"] + composer["height"] > viewport["height"] - 70, state.name
        if state.path == "/scratchpad" and state.email:
            # Editor, Run, Stop, the output and the budget all within the screen's width.
            for hook in ("code", "run", "stop", "output", "budget-left"):
                box = page.get_by_test_id(hook).bounding_box()
                assert box and box["x"] >= 0 and box["x"] + box["width"] <= viewport["width"], (
                    state.name, hook, box)
        page.close()
    assert problems == []


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_no_serious_accessibility_problems(relay: UpstreamRelay, contexts: Callable,
                                           scheme: str) -> None:
    """axe-core (web/node_modules/axe-core, run in the page) reports no serious or critical
    violation — contrast included — on any page, signed out, as a student and as an admin, in
    the light and the dark theme, on a laptop and (light, most states) on a phone."""
    problems = []
    for state in STATES:
        on_phone = scheme == "light" and state.then in (None, settings_open, chart_drawn, ran_a_cell)
        for viewport in (DESKTOP, PHONE) if on_phone else (DESKTOP,):
            page = look_at(contexts(viewport, state.email, scheme), relay, state)
            assert page.evaluate("document.documentElement.dataset.theme") == scheme
            problems += [f"{state.name} ({state.path}, {viewport['width']}px): {v}"
                         for v in axe_violations(page)]
            page.close()
    assert problems == []
