"""Markdown replies in the page: marked (parse) + DOMPurify (sanitise: a reply is untrusted
text) + highlight.js (code), all served by the relay from web/node_modules. Code is highlighted
as it streams in; once the reply is complete each block also gets its language and a Copy
button. Browser only (imports `js`).
"""

import js
import pagekit as kit


def available() -> bool:
    return bool(getattr(js.window, "marked", None)) and bool(getattr(js.window, "DOMPurify", None))


def render(element, text, final=True) -> None:
    """Show `text` as Markdown in `element` (re-rendered whole on each call while streaming:
    an unfinished code fence or list still reads right)."""
    if not available():  # the libraries failed to load: plain text is still readable
        element.textContent = text
        return
    element.innerHTML = js.DOMPurify.sanitize(js.marked.parse(text))
    highlight(element)
    if final:
        decorate(element)


def highlight(element) -> None:
    hljs = getattr(js.window, "hljs", None)
    if not hljs:
        return
    for code in kit.all_nodes_in(element, "pre code"):
        hljs.highlightElement(code)


def language(code) -> str:
    """"language-python hljs" -> "python" (marked's class for a fenced block's info string)."""
    for name in str(code.className).split():
        if name.startswith("language-"):
            return name[len("language-"):]
    return ""


def decorate(element) -> None:
    for block in kit.all_nodes_in(element, "pre"):
        code = block.querySelector("code")
        if code is None:
            continue
        block.classList.add("has-copy")
        lang = language(code)
        if lang:
            block.appendChild(kit.make("span", lang, **{"class": "codelang"}))
        button = kit.make("button", "Copy", type="button", title="Copy this code",
                          **{"class": "copy secondary small"})
        block.appendChild(button)
        kit.wire_copy(button, _text_of(code))
    for table in kit.all_nodes_in(element, "table"):
        table.setAttribute("tabindex", "0")  # a wide table scrolls: let the keyboard scroll it


def _text_of(code):
    return lambda: str(code.textContent)
