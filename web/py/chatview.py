"""Browser glue: the playground's messages in the page (one <article> each, assistant replies
as Markdown with a meta line of model, tokens and cost). Imports `js` through pagekit."""

import catalog
import chat
import pagekit as kit
import richtext


def message_element(role, text, meta=None):
    """An <article> for one message; returns (article, content, meta line)."""
    kit.hide("empty")
    article = kit.make("article", None, **{"class": "msg " + role})
    article.appendChild(kit.make("div", "You" if role == "user" else "Assistant",
                                 **{"class": "who"}))
    content = kit.make("div", None, **{"class": "content"})
    article.appendChild(content)
    line = kit.make("div", None, **{"class": "meta"})
    article.appendChild(line)
    if role == "user":
        content.textContent = text
    else:
        richtext.render(content, text)
        if meta:
            line.textContent = chat.meta_text(meta, catalog.usage_tokens(meta.get("usage")))
    kit.node("messages").appendChild(article)
    return article, content, line


def mark_latest(content, line) -> None:
    """SPEC §10: `reply` is the latest assistant message, `cost` the latest reply's cost."""
    for old in kit.all_nodes('[data-testid="reply"]'):
        old.removeAttribute("data-testid")
    content.setAttribute("data-testid", "reply")
    line.setAttribute("data-role", "reply-meta")


def scroll_down() -> None:
    box = kit.node("messages")
    box.scrollTop = box.scrollHeight
