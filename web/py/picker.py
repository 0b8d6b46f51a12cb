"""The playground's model picker as data and HTML: models grouped by provider (OpenRouter's
also by the lab that made them), each with its price, the default choice, and the keys that move
through the list. The page puts `listbox_html(...)` in with one `innerHTML` and only wires events.
Runs under CPython and MicroPython.
"""

import catalog
import money
from markup import escape, slug

# OpenRouter ids start with the lab's slug: "anthropic/claude-3.5-haiku".
VENDORS = {
    "openai": "OpenAI", "anthropic": "Anthropic", "google": "Google", "meta-llama": "Meta Llama",
    "mistralai": "Mistral AI", "deepseek": "DeepSeek", "x-ai": "xAI", "qwen": "Qwen",
    "cohere": "Cohere", "microsoft": "Microsoft", "nvidia": "NVIDIA", "amazon": "Amazon",
    "perplexity": "Perplexity", "moonshotai": "Moonshot AI", "z-ai": "Z.ai", "minimax": "MiniMax",
}
# Picked first when the user has not chosen yet: cheap, fast, good enough to try things.
PREFERRED = ("openai:gpt-4.1-nano", "openai:gpt-4o-mini", "openrouter:openai/gpt-4.1-nano",
             "openrouter:openai/gpt-4o-mini", "openai:aipipe-demo")
PAGE = 8  # PageUp / PageDown step


def vendor_of(model) -> str:
    """"anthropic/claude-3.5-haiku" -> "anthropic"; "" for ids without a lab prefix."""
    model_id = model["id"]
    return model_id.partition("/")[0] if "/" in model_id else ""


def group_of(model):
    """(sort key, heading) of the group a model is listed under."""
    provider = catalog.PROVIDER_NAMES.get(model["provider"], model["provider"])
    vendor = vendor_of(model)
    order = catalog.PROVIDERS.index(model["provider"]) if model["provider"] in catalog.PROVIDERS else 9
    if not vendor:
        return (str(order) + ":", provider)
    return (str(order) + ":" + vendor, provider + " · " + VENDORS.get(vendor, vendor))


def grouped(models) -> list:
    """[(heading, [models])], groups in provider then lab order, models as given (sorted)."""
    groups = {}
    for model in models:
        key, heading = group_of(model)
        if key not in groups:
            groups[key] = (heading, [])
        groups[key][1].append(model)
    return [groups[key] for key in sorted(groups)]


def short_name(model) -> str:
    """The id without the lab prefix its group heading already says."""
    vendor = vendor_of(model)
    return model["id"][len(vendor) + 1:] if vendor else model["id"]


def price_short(model) -> str:
    """"$0.15 / $0.60" (input / output per 1M tokens), "free" or "price varies"."""
    if model["input"] is None or model["output"] is None:
        return "price varies"
    if model["input"] == 0 and model["output"] == 0:
        return "free"
    return money.per_million(model["input"]) + " / " + money.per_million(model["output"])


def option_id(key: str) -> str:
    return "opt-" + slug(key)


def _option(model, cache):
    """(opening tag up to its state, the rest): built once per model when `cache` is a dict."""
    key = model["key"]
    made = cache.get(key) if cache is not None else None
    if made is None:
        made = ('<div role="option" id="' + option_id(key) + '" data-value="' + escape(key) +
                '" title="' + escape(model["name"]) + '"',
                '><span class="name">' + escape(short_name(model)) + '</span><span class="price">' +
                escape(price_short(model)) + "</span></div>")
        if cache is not None:
            cache[key] = made
    return made


def listbox_html(models, selected: str, active: str, cache=None) -> str:
    """The listbox's inside: a group (role="group", labelled by its heading) per provider and
    lab, an option per model with its price; `selected` is the chosen key, `active` the one the
    keyboard is on. Pass the same dict as `cache` on every call to build each option once."""
    parts = []
    for index, (heading, members) in enumerate(grouped(models)):
        label_id = "grp-" + str(index)
        parts.append('<div role="group" aria-labelledby="' + label_id + '"><div class="group-label" '
                     'role="presentation" id="' + label_id + '">' + escape(heading) + "</div>")
        for model in members:
            head, rest = _option(model, cache)
            parts.append(head + ' aria-selected="' + ("true" if model["key"] == selected else "false") +
                         '"' + (' class="active"' if model["key"] == active else "") + rest)
        parts.append("</div>")
    return "".join(parts)


def shown(found, limit: int = 150) -> list:
    """The matches the list draws: the first `limit` (typing narrows a long list down)."""
    return found[:limit]


def default_key(models, wanted: str = "") -> str:
    """The key to select: the user's last choice if still offered, else a preferred cheap model,
    else the first; "" when there are none."""
    keys = [m["key"] for m in models]
    if wanted in keys:
        return wanted
    for key in PREFERRED:
        if key in keys:
            return key
    return keys[0] if keys else ""


def move(keys, active: str, key: str) -> str:
    """Where a key press in the search box moves the highlighted option (no wrapping)."""
    if not keys:
        return ""
    index = keys.index(active) if active in keys else -1
    if key == "ArrowDown":
        index = index + 1
    elif key == "ArrowUp":
        index = index - 1 if index > 0 else 0
    elif key == "PageDown":
        index = index + PAGE
    elif key == "PageUp":
        index = index - PAGE
    elif key == "Home":
        index = 0
    elif key == "End":
        index = len(keys) - 1
    else:
        return active if active in keys else keys[0]
    return keys[max(0, min(len(keys) - 1, index))]


def count_text(matches: int, total: int, query: str, drawn: int = -1) -> str:
    """The picker's footer: how many models (and how many of them the list shows), and what the
    prices mean."""
    if query.strip():
        head = str(matches) + " of " + str(total) + " models match"
    else:
        head = str(total) + (" model" if total == 1 else " models")
    if 0 <= drawn < matches:
        head += " (first " + str(drawn) + " shown: type to narrow)"
    return head + " · USD per 1M tokens, input / output"


def ordered(models) -> list:
    """The models in the order the list shows them (group by group)."""
    out = []
    for _heading, members in grouped(models):
        out.extend(members)
    return out
