"""Browser glue: the playground's settings panel — beside the chat on a laptop (open at first),
over it on a phone (closed at first; the chat behind is dimmed and a tap there closes it).
CSS decides the first state from the screen's width; this module keeps `aria-expanded` true."""

import js
import pagekit as kit

NARROW = "(max-width: 64rem)"  # the width at which aipipe.css puts the panel over the chat


def narrow() -> bool:
    return bool(js.window.matchMedia(NARROW).matches)


def is_open() -> bool:
    return str(js.window.getComputedStyle(kit.node("settings")).display) != "none"


def set_open(opened) -> None:
    kit.node("play").dataset.settings = "open" if opened else "closed"
    kit.node("settings-toggle").setAttribute("aria-expanded", "true" if opened else "false")
    if opened and narrow():
        kit.node("system").focus()


def _backdrop_click(event) -> None:
    if narrow() and is_open() and event.target.isSameNode(kit.node("play")):
        set_open(False)


def start() -> None:
    kit.on("settings-toggle", "click", lambda _e: set_open(not is_open()))
    kit.on("settings-close", "click", lambda _e: set_open(False))
    kit.on("play", "click", _backdrop_click)
    kit.node("settings-toggle").setAttribute("aria-expanded", "true" if is_open() else "false")
