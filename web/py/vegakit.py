"""Charts: Vega specs built in Python (charts.py) drawn by vega, which the relay serves from
web/node_modules; a tooltip of our own (styled like the page, readable in both themes); the
chart follows its card's width. Browser only (imports `js`)."""

import asyncio
import json

import js
import markup
from pyscript.ffi import create_proxy

LABEL_WIDTH = 64  # px an axis date label ("Mar 25") needs, with room to breathe
_views = {}  # selector -> the drawn vega View (finalised before a redraw)
_state = {"tip": None, "resize": None}


def max_labels(width) -> int:
    """How many date labels fit across a chart `width` pixels wide."""
    return max(2, int(width) // LABEL_WIDTH)


async def wait_for_library(seconds=10.0) -> bool:
    """vega loads as a deferred script next to PyScript: wait for it briefly."""
    waited = 0.0
    while not getattr(js.window, "vega", None):
        if waited >= seconds:
            return False
        await asyncio.sleep(0.05)
        waited += 0.05
    return True


def _js(value):
    return js.JSON.parse(json.dumps(value))


def _tip():
    if _state["tip"] is None:
        tip = js.document.createElement("div")
        tip.id = "chart-tip"
        tip.className = "chart-tip"
        tip.setAttribute("role", "tooltip")
        tip.hidden = True
        js.document.body.appendChild(tip)
        _state["tip"] = tip
    return _state["tip"]


def _tooltip(_handler, event, _item, value):
    """Vega calls this as the pointer moves over a mark: show the mark's fields beside it."""
    tip = _tip()
    if value is None or event is None:
        tip.hidden = True
        return
    keys = js.Object.keys(value)
    rows = ""
    for i in range(int(keys.length)):
        key = str(keys[i])
        rows += ("<div><span>" + markup.escape(key) + "</span><strong>" +
                 markup.escape(str(getattr(value, key))) + "</strong></div>")
    tip.innerHTML = rows
    tip.hidden = False
    x, y = int(event.clientX), int(event.clientY)
    room = int(js.window.innerWidth) - int(tip.offsetWidth) - 8
    tip.style.left = str(max(8, min(x + 14, room))) + "px"
    tip.style.top = str(y + 14) + "px"


def _resize_all(_event=None) -> None:
    for selector in _views:
        view, element = _views[selector]
        width = int(element.clientWidth)
        if width and width != int(view.width()):
            view.width(width).runAsync()


async def draw(selector: str, spec) -> bool:
    """Draw `spec` into the element the CSS `selector` names, replacing what was there (a
    skeleton, or the previous chart); False when the library is missing."""
    element = js.document.querySelector(selector)
    if not await wait_for_library():
        element.textContent = "The chart library did not load."
        return False
    old = _views.pop(selector, None)
    if old is not None:
        old[0].finalize()
    element.innerHTML = ""
    options = js.Object.new()
    options.renderer = "svg"
    options.container = element
    options.hover = True
    view = js.vega.View.new(js.vega.parse(_js(spec)), options)
    view.tooltip(create_proxy(_tooltip))
    await view.runAsync()
    _views[selector] = (view, element)
    if _state["resize"] is None:
        _state["resize"] = create_proxy(_resize_all)
        js.window.addEventListener("resize", _state["resize"])
    # Screen readers get the one-sentence summary (spec "description") as an image's name,
    # not Vega's tree of marks.
    element.setAttribute("role", "img")
    element.setAttribute("aria-label", spec.get("description") or "Chart")
    element.removeAttribute("aria-roledescription")
    svg = element.querySelector("svg")
    if svg:
        svg.setAttribute("aria-hidden", "true")
    return True
