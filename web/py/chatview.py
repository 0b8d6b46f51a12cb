"""Browser glue: the playground's messages in the page — one <article> each, the user's as a
bubble on the right, the assistant's on the left rendered as Markdown, with a meta line of
model, tokens and cost under it. Imports `js` through pagekit."""

import catalog
import chat
import markup
import pagekit as kit
import richtext

USER_SHELL = ('<div class="body"><span class="sr-only">You said:</span>'
              '<div class="bubble"></div><div class="meta"></div></div>')
ASSISTANT_SHELL = ('<span class="bot" aria-hidden="true"><span class="logo"></span></span>'
                   '<div class="body"><span class="sr-only">The model replied:</span>'
                   '<div class="bubble"></div><div class="meta"></div></div>')
TYPING = '<span class="typing" aria-label="Writing"><span></span><span></span><span></span></span>'
NEAR_BOTTOM_PX = 96  # follow a streaming reply only while the reader is at the bottom


def message_element(role, text, meta=None):
    """An <article> for one message, added to the conversation; returns (article, bubble,
    meta line)."""
    kit.hide("empty")
    article = kit.make("article", None, **{"class": "msg " + role})
    article.innerHTML = USER_SHELL if role == "user" else ASSISTANT_SHELL
    bubble = article.querySelector(".bubble")
    line = article.querySelector(".meta")
    if role == "user":
        bubble.textContent = text
    elif text:
        richtext.render(bubble, text)
    else:
        bubble.innerHTML = TYPING
    if meta and role == "assistant":
        show_meta(line, meta)
    kit.node("messages").appendChild(article)
    return article, bubble, line


def show_meta(line, meta) -> None:
    """The line under a reply: model · tokens · cost (where it came from) · stopped."""
    parts = chat.meta_parts(meta, catalog.usage_tokens(meta.get("usage")))
    html = ""
    for kind, text in parts:
        html += '<span class="' + kind + '">' + markup.escape(text) + "</span>"
    latest = line.getAttribute("data-role") == "reply-meta"
    line.innerHTML = html
    if latest:
        _mark_cost(line)


def mark_latest(bubble, line) -> None:
    """SPEC §10: `reply` is the latest assistant message, `cost` the latest reply's cost."""
    for old in kit.all_nodes('[data-testid="reply"], [data-testid="cost"]'):
        old.removeAttribute("data-testid")
    for old in kit.all_nodes('[data-role="reply-meta"]'):
        old.removeAttribute("data-role")
    bubble.setAttribute("data-testid", "reply")
    line.setAttribute("data-role", "reply-meta")
    _mark_cost(line)


def _mark_cost(line) -> None:
    cost = line.querySelector(".cost")
    if cost is None:
        cost = kit.make("span", "…", **{"class": "cost"})
        line.appendChild(cost)
    cost.setAttribute("data-testid", "cost")


def near_bottom() -> bool:
    box = kit.node("messages")
    return int(box.scrollHeight) - int(box.scrollTop) - int(box.clientHeight) < NEAR_BOTTOM_PX


def scroll_down(force=False) -> None:
    """Keep the newest text in view, unless the reader scrolled up to read something."""
    box = kit.node("messages")
    if force or near_bottom():
        box.scrollTop = box.scrollHeight
