"""Thin DOM glue shared by every page (imports `js`/`pyscript`, so it runs only in the browser).

Pure logic lives in the sibling modules (money, session, handoff, snippets) and is tested under
CPython; this kit only reads and writes the page, localStorage and the network.
"""

import asyncio
import json

import js
import session
from pyscript import fetch
from pyscript.ffi import create_proxy

document = js.document
window = js.window
_tasks = []  # keep references: a task nobody holds may be collected before it runs


def config():
    """The deployment's public config, embedded by the relay as JSON in the page."""
    node = document.getElementById("aipipe-config")
    return json.loads(node.textContent) if node else {}


def origin() -> str:
    return str(window.location.origin)


def by_testid(testid):
    return document.querySelector(f'[data-testid="{testid}"]')


def node(id_or_testid):
    return document.getElementById(id_or_testid) or by_testid(id_or_testid)


def all_nodes(selector):
    """querySelectorAll as a Python list (index access works the same in both interpreters)."""
    found = document.querySelectorAll(selector)
    return [found.item(i) for i in range(int(found.length))]


def set_text(id_or_testid, text) -> None:
    element = node(id_or_testid)
    if element:
        element.textContent = str(text)


def show(id_or_testid, visible=True) -> None:
    element = node(id_or_testid)
    if element:
        element.hidden = not visible


def hide(id_or_testid) -> None:
    show(id_or_testid, False)


def mark_ready() -> None:
    """The automation hook (SPEC §10): Python has started and the page is usable."""
    document.body.dataset.ready = "true"


def on(id_or_testid, event, handler) -> None:
    """Call `handler(event)` (plain or async) on a DOM event of one element."""
    element = node(id_or_testid)
    if not element:
        return

    def listener(evt):
        result = handler(evt)
        if result is not None and hasattr(result, "send"):  # a coroutine: run it
            spawn(result)

    element.addEventListener(event, create_proxy(listener))


def spawn(coro) -> None:
    task = asyncio.create_task(coro)
    _tasks.append(task)
    if len(_tasks) > 50:
        del _tasks[:25]


def load_profile():
    return session.load(window.localStorage.getItem(session.STORAGE_KEY))


def save_profile(profile) -> None:
    window.localStorage.setItem(session.STORAGE_KEY, session.dump(profile))


def clear_profile() -> None:
    window.localStorage.removeItem(session.STORAGE_KEY)


async def request_json(url, method="GET", body=None, token=None):
    """(status, parsed JSON or None). Network failures give status 0 and an error dict."""
    headers = {}
    if token:
        headers["Authorization"] = "Bearer " + token
    options = {"method": method, "headers": headers}
    if body is not None:
        headers["Content-Type"] = "application/json"
        options["body"] = json.dumps(body)
    try:
        response = await fetch(url, **options)
        text = await response.text()
    except Exception as error:  # a JS TypeError (offline, CORS, aborted)
        return 0, {"message": f"network error: {error}"}
    try:
        data = json.loads(text) if text else None
    except ValueError:
        data = None
    return int(response.status), data


def show_who(profile) -> None:
    """The header's "signed in as" corner, on every page."""
    set_text("who", profile.get("email", "") if profile else "")


def make(tag, text=None, **attrs):
    element = document.createElement(tag)
    if text is not None:
        element.textContent = str(text)
    for key, value in attrs.items():
        element.setAttribute(key.replace("_", "-"), str(value))
    return element


async def copy_text(text) -> bool:
    """Copy to the clipboard; False when the browser refuses (no permission, no focus)."""
    try:
        await window.navigator.clipboard.writeText(text)
    except Exception:  # a JS DOMException: no permission or no focus
        return False
    return True


def render_snippets(container_id, items) -> None:
    """Tabs of code snippets [(id, title, code)], each with a copy button."""
    container = node(container_id)
    if not container:
        return
    container.innerHTML = ""
    tabs = make("div", None, role="tablist", **{"class": "tabs"})
    container.appendChild(tabs)
    panes = []
    for index, (key, title, code) in enumerate(items):
        tab = make("button", title, role="tab", data_snippet=key, type="button")
        tab.setAttribute("aria-selected", "true" if index == 0 else "false")
        tabs.appendChild(tab)
        pane = make("div", None, data_testid="snippet-" + key, **{"class": "snippet"})
        pane.hidden = index != 0
        pre = make("pre")
        pre.appendChild(make("code", code))
        pane.appendChild(pre)
        copy = make("button", "Copy", type="button", **{"class": "copy secondary"})
        pane.appendChild(copy)
        container.appendChild(pane)
        panes.append((tab, pane))
        _wire_copy(copy, code)
    for tab, pane in panes:
        _wire_tab(tab, pane, panes)


def _wire_tab(tab, pane, panes) -> None:
    def select(_event):
        for other_tab, other_pane in panes:
            other_tab.setAttribute("aria-selected", "false")
            other_pane.hidden = True
        tab.setAttribute("aria-selected", "true")
        pane.hidden = False

    tab.addEventListener("click", create_proxy(select))


def _wire_copy(button, code) -> None:
    async def copy():
        button.textContent = "Copied" if await copy_text(code) else "Select and copy"

    def listener(_event):
        spawn(copy())

    button.addEventListener("click", create_proxy(listener))
