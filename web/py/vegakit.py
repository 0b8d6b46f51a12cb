"""Charts: Vega-Lite specs built in Python (charts.py) drawn by vega-embed, which the relay
serves from web/node_modules with vega and vega-lite. Browser only (imports `js`)."""

import asyncio
import json

import js

OPTIONS = {
    "renderer": "svg",
    # Export (SVG/PNG) happens in the browser; the editor links would leave the site.
    "actions": {"export": True, "source": False, "compiled": False, "editor": False},
}


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
    """Draw `spec` into the element the CSS `selector` names; False when the library is
    missing."""
    if not await wait_for_library():
        js.document.querySelector(selector).textContent = "The chart library did not load."
        return False
    # `.call(None, ...)`: called as `js.vegaEmbed(...)` MicroPython binds `this` to its `js`
    # proxy, and vega-embed then draws nothing (measured) — call it as a plain function.
    await js.vegaEmbed.call(None, selector, _js(spec), _js(OPTIONS))
    return True
