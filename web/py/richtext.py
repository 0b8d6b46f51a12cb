"""Markdown replies in the page: marked (parse) + DOMPurify (sanitise: a reply is untrusted
text) + highlight.js (code), all served by the relay from web/node_modules. Each code block
gets a Copy button. Browser only (imports `js`).
"""

import js
import pagekit as kit
from pyscript.ffi import create_proxy


def available() -> bool:
    return bool(getattr(js.window, "marked", None)) and bool(getattr(js.window, "DOMPurify", None))


def render(element, text, final=True) -> None:
    """Show `text` as Markdown in `element`; `final` also highlights code and adds copy
    buttons (skipped while a reply streams in, where it would redo the work on every token)."""
    if not available():  # the libraries failed to load: plain text is still readable
        element.textContent = text
        return
    element.innerHTML = js.DOMPurify.sanitize(js.marked.parse(text))
    if final:
        decorate(element)


def decorate(element) -> None:
    hljs = getattr(js.window, "hljs", None)
    found = element.querySelectorAll("pre")
    for block in [found.item(i) for i in range(int(found.length))]:
        code = block.querySelector("code")
        if code is None:
            continue
        if hljs:
            hljs.highlightElement(code)
        block.classList.add("has-copy")
        button = kit.make("button", "Copy", type="button", title="Copy this code",
                          **{"class": "copy secondary"})
        block.appendChild(button)
        _wire_copy(button, code)


def _wire_copy(button, code) -> None:
    async def copy():
        done = await kit.copy_text(str(code.textContent))
        button.textContent = "Copied" if done else "Select and copy"

    def listener(_event):
        kit.spawn(copy())

    button.addEventListener("click", create_proxy(listener))
