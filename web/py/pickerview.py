"""Browser glue for the model picker (a button that opens a search box and a grouped list, the
ARIA combobox pattern): opening, filtering as you type, arrow keys, Enter, Escape, clicks.
What to show comes from picker.py and catalog.py (pure, tested under CPython)."""

import catalog
import js
import pagekit as kit
import picker
from pyscript.ffi import create_proxy

state = {"models": [], "shown": [], "selected": "", "active": "", "on_choose": None, "html": {}}


def start(on_choose) -> None:
    """Wire the picker once; `on_choose(model)` runs when the user picks a model."""
    state["on_choose"] = on_choose
    kit.on("model", "click", _toggle)
    kit.on("model", "keydown", _button_key)
    kit.on("model-search", "input", lambda _e: _filter())
    kit.on("model-search", "keydown", _search_key)
    kit.on("model-list", "click", _list_click)
    kit.on("model-list", "mousemove", _list_hover)
    js.document.addEventListener("pointerdown", create_proxy(_outside))


def set_models(models, wanted="") -> None:
    state["models"] = picker.ordered(models)
    key = picker.default_key(state["models"], wanted)
    choose(key, notify=False)
    if is_open():
        _filter()


def selected():
    return catalog.find(state["models"], state["selected"])


def choose(key, notify=True) -> None:
    """Make `key` the chosen model: the button shows its name and price."""
    state["selected"] = key
    model = selected()
    button = kit.node("model")
    button.dataset.value = key
    if model is None:
        kit.set_text("model-name", "No models available" if not state["models"] else "Pick a model")
        kit.set_text("model-short-price", "")
    else:
        kit.set_text("model-name", model["id"])
        kit.set_text("model-short-price", picker.price_short(model))
    if notify and state["on_choose"]:
        state["on_choose"](model)


def is_open() -> bool:
    return not kit.node("model-pop").hidden


def open_list() -> None:
    if not state["models"]:
        return
    kit.node("model-pop").hidden = False
    kit.node("model").setAttribute("aria-expanded", "true")
    search = kit.node("model-search")
    search.value = ""
    state["active"] = state["selected"]
    _filter(keep_active=True)
    search.focus()


def close_list(focus_button=True) -> None:
    if not is_open():
        return
    kit.node("model-pop").hidden = True
    kit.node("model").setAttribute("aria-expanded", "false")
    if focus_button:
        kit.node("model").focus()


def _toggle(_event) -> None:
    if is_open():
        close_list()
    else:
        open_list()


def _button_key(event) -> None:
    if str(event.key) in ("ArrowDown", "ArrowUp") and not is_open():
        event.preventDefault()
        open_list()


def _filter(keep_active=False) -> None:
    query = str(kit.node("model-search").value)
    found = catalog.search(state["models"], query)
    state["shown"] = picker.shown(found)
    if keep_active and state["active"] and state["active"] not in [m["key"] for m in state["shown"]]:
        chosen = catalog.find(found, state["active"])  # the chosen model is always drawn
        if chosen is not None:
            state["shown"] = picker.ordered(state["shown"] + [chosen])
    keys = [m["key"] for m in state["shown"]]
    if not (keep_active and state["active"] in keys):
        state["active"] = keys[0] if keys else ""
    box = kit.node("model-list")
    if state["shown"]:
        box.innerHTML = picker.listbox_html(state["shown"], state["selected"], state["active"],
                                            state["html"])
    else:
        box.innerHTML = '<div class="picker-empty" role="presentation">No model matches.</div>'
    kit.set_text("model-count", picker.count_text(len(found), len(state["models"]), query,
                                                  len(state["shown"])))
    _show_active()


def _show_active() -> None:
    search = kit.node("model-search")
    if not state["active"]:
        search.removeAttribute("aria-activedescendant")
        return
    option_id = picker.option_id(state["active"])
    search.setAttribute("aria-activedescendant", option_id)
    option = js.document.getElementById(option_id)
    if option:
        option.scrollIntoView(js.JSON.parse('{"block": "nearest"}'))


def _set_active(key) -> None:
    if key == state["active"]:
        return
    old = js.document.getElementById(picker.option_id(state["active"])) if state["active"] else None
    if old:
        old.classList.remove("active")
    state["active"] = key
    new = js.document.getElementById(picker.option_id(key)) if key else None
    if new:
        new.classList.add("active")
    _show_active()


def _search_key(event) -> None:
    key = str(event.key)
    if key in ("ArrowDown", "ArrowUp", "PageDown", "PageUp") or (
            key in ("Home", "End") and event.ctrlKey):
        event.preventDefault()
        _set_active(picker.move([m["key"] for m in state["shown"]], state["active"], key))
    elif key == "Enter":
        event.preventDefault()
        if state["active"]:
            close_list()
            choose(state["active"])
    elif key == "Escape":
        event.preventDefault()
        close_list()
    elif key == "Tab":
        close_list(focus_button=False)


def _list_click(event) -> None:
    option = event.target.closest('[role="option"]')
    if option:
        close_list()
        choose(str(option.dataset.value))


def _list_hover(event) -> None:
    option = event.target.closest('[role="option"]')
    if option:
        _set_active(str(option.dataset.value))


def _outside(event) -> None:
    if is_open() and not kit.node("picker").contains(event.target):
        close_list(focus_button=False)
