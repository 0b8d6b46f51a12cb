"""Thin DOM glue shared by every page (imports `js`/`pyscript`, so it runs only in the browser).

Pure logic lives in the sibling modules (money, session, handoff, snippets) and is tested under
CPython; this kit only reads and writes the page, localStorage and the network.
"""

import asyncio
import json

import js
import markup
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


def all_nodes_in(element, selector):
    """element.querySelectorAll as a Python list."""
    found = element.querySelectorAll(selector)
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


async def request_json(url, method="GET", body=None, token=None, extra=()):
    """(status, parsed JSON or None); `extra`: more (name, value) headers. Network failures give
    status 0 and an error dict."""
    headers = {name: value for name, value in extra}
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


THEME_KEY = "aipipe-theme"  # "light" / "dark" once the user picks one (web/static/boot.js reads it)
ADMIN_KEY = "aipipe-admin"  # the email last seen to be an admin: the Admin link shows at once
_theme_listeners = []


def show_who(profile) -> None:
    """The header's account corner, on every page: the signed-in email (a link to the account
    page) or "Sign in". boot.js showed the stored state before Python started."""
    email = profile.get("email", "") if profile else ""
    root = document.documentElement
    root.dataset.auth = "in" if email else "out"
    set_text("who", email)
    set_text("avatar", email[:1].upper())
    account = node("account-link")
    if account:
        account.title = email
    if not email:
        set_admin("", False)


def set_admin(email, admin) -> None:
    """Show or hide the header's Admin link, and remember it for the next page's first paint."""
    root = document.documentElement
    if admin and email:
        root.dataset.admin = "yes"
        window.localStorage.setItem(ADMIN_KEY, email)
    else:
        root.removeAttribute("data-admin")
        window.localStorage.removeItem(ADMIN_KEY)


def note_usage(profile, usage) -> None:
    """A /usage answer says whether this user is an admin (the header's Admin link)."""
    if profile and isinstance(usage, dict):
        set_admin(profile.get("email", ""), bool(usage.get("admin")))


def theme() -> str:
    return "dark" if str(document.documentElement.dataset.theme) == "dark" else "light"


def on_theme(callback) -> None:
    """Call `callback(theme)` after the user switches between light and dark (charts redraw)."""
    _theme_listeners.append(callback)


def _sync_theme_button() -> None:
    button = node("theme-toggle")
    if button:
        button.setAttribute("aria-pressed", "true" if theme() == "dark" else "false")


def _toggle_theme(_event) -> None:
    chosen = "light" if theme() == "dark" else "dark"
    document.documentElement.dataset.theme = chosen
    window.localStorage.setItem(THEME_KEY, chosen)
    _sync_theme_button()
    for callback in _theme_listeners:
        result = callback(chosen)
        if result is not None and hasattr(result, "send"):
            spawn(result)


def start_header(profile) -> None:
    """Every page's first call: the account corner and the theme switch."""
    show_who(profile)
    _sync_theme_button()
    on("theme-toggle", "click", _toggle_theme)


def show_meter(id_or_testid, percent, exhausted=False, some=False) -> None:
    """A budget bar (role="meter"): its fill, its value for screen readers, and its colour
    (a sliver once anything is spent, amber past 80%, red when used up)."""
    meter = node(id_or_testid)
    if not meter:
        return
    percent = max(0, min(100, int(percent)))
    meter.firstElementChild.style.width = str(percent) + "%"
    meter.setAttribute("aria-valuenow", str(percent))
    meter.setAttribute("aria-valuetext", str(percent) + "% used")
    meter.classList.toggle("some", bool(some))
    meter.classList.toggle("high", percent >= 80 and not exhausted)
    meter.classList.toggle("full", bool(exhausted))


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


def render_snippets(container_id, items, label="Examples") -> None:
    """Tabs of code snippets [(id, title, code)] with one Copy button (markup.code_box)."""
    container = node(container_id)
    if not container:
        return
    container.innerHTML = markup.code_box(container_id, items, label)
    tabs = all_nodes("#" + container_id + ' [role="tab"]')
    panes = all_nodes("#" + container_id + ' [role="tabpanel"]')

    def select(index, focus=False):
        for i, tab in enumerate(tabs):
            tab.setAttribute("aria-selected", "true" if i == index else "false")
            tab.setAttribute("tabindex", "0" if i == index else "-1")
            panes[i].hidden = i != index
        if focus:
            tabs[index].focus()

    def current():
        for i, tab in enumerate(tabs):
            if str(tab.getAttribute("aria-selected")) == "true":
                return i
        return 0

    def clicked(event):
        tab = event.target.closest('[role="tab"]')
        if tab:
            select(_index_of(tabs, tab))

    def keyed(event):
        index = markup.next_tab(current(), len(tabs), str(event.key))
        if index != current():
            event.preventDefault()
            select(index, True)

    bar = container.querySelector('[role="tablist"]')
    bar.addEventListener("click", create_proxy(clicked))
    bar.addEventListener("keydown", create_proxy(keyed))
    copy = container.querySelector("button.copy")
    wire_copy(copy, lambda: items[current()][2])


def _index_of(elements, element) -> int:
    for i, other in enumerate(elements):
        if other.isSameNode(element):
            return i
    return 0


def wire_copy(button, text_of) -> None:
    """A Copy button: copies `text_of()`, then says so for a moment."""
    async def copy():
        done = await copy_text(text_of())
        button.textContent = "Copied" if done else "Select and copy"
        button.classList.toggle("done", done)
        await asyncio.sleep(1.6)
        button.textContent = "Copy"
        button.classList.remove("done")

    button.addEventListener("click", create_proxy(lambda _event: spawn(copy())))
