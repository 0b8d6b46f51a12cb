"""Charts: Vega-Lite specs built in Python (charts.py) drawn by vega-embed, which the relay
serves from web/node_modules with vega and vega-lite. Browser only (imports `js`)."""

import asyncio
import json

import js

# No "…" menu (export and editor links are for chart authors, not students).
OPTIONS = {"renderer": "svg", "actions": False}
LABEL_WIDTH = 64  # px an axis date label ("Mar 25") needs, with room to breathe
_views = {}


def max_labels(width) -> int:
    """How many date labels fit across a chart `width` pixels wide."""
    return max(2, int(width) // LABEL_WIDTH)


async def wait_for_library(seconds=10.0) -> bool:
    """The libraries load as deferred scripts next to PyScript: wait for them briefly."""
    waited = 0.0
    while not getattr(js.window, "vegaEmbed", None):
        if waited >= seconds:
            return False
        await asyncio.sleep(0.05)
        waited += 0.05
    return True


def _js(value):
    return js.JSON.parse(json.dumps(value))


async def draw(selector: str, spec) -> bool:
    """Draw `spec` into the element the CSS `selector` names, replacing what was there (a
    skeleton, or the previous chart); False when the library is missing."""
    element = js.document.querySelector(selector)
    if not await wait_for_library():
        element.textContent = "The chart library did not load."
        return False
    old = _views.pop(selector, None)
    if old is not None:
        old.finalize()
    element.innerHTML = ""
    # `.call(None, ...)`: called as `js.vegaEmbed(...)` MicroPython binds `this` to its `js`
    # proxy, and vega-embed then draws nothing (measured) — call it as a plain function.
    result = await js.vegaEmbed.call(None, element, _js(spec), _js(OPTIONS))
    _views[selector] = result
    # Screen readers get the one-sentence summary (spec "description") as an image's name,
    # not Vega's tree of marks.
    element.setAttribute("role", "img")
    element.setAttribute("aria-label", spec.get("description") or "Chart")
    element.removeAttribute("aria-roledescription")
    svg = element.querySelector("svg")
    if svg:
        svg.setAttribute("aria-hidden", "true")
    return True
