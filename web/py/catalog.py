"""The playground's model picker: models from the providers' own lists (through the relay) with
their prices, searchable, and what one reply cost.

Prices are held exactly as integer pico-dollars (1e-12 USD) per token: $0.15 per 1M tokens is
150000, OpenRouter's "0.00000015" per token is the same 150000. A reply's cost is then a whole
number of pico-dollars (tokens x price), so nothing is lost to floats.
Amounts are read and shown by money.py, the pages' one money module.
Runs under CPython and MicroPython (no dict order is relied on: results are sorted).
"""

from money import per_million, scaled

PROVIDERS = ("openai", "openrouter", "anthropic")
PROVIDER_NAMES = {"openai": "OpenAI", "openrouter": "OpenRouter", "anthropic": "Anthropic"}
# Anthropic speaks its Messages API (anthropic_chat.py builds its body and reads its stream).
CHAT_PATHS = {"openai": "/openai/v1/chat/completions",
              "openrouter": "/openrouter/v1/chat/completions",
              "anthropic": "/anthropic/v1/messages"}
# OpenAI lists every model its key can use; these cannot answer chat completions.
NOT_CHAT = ("embedding", "whisper", "tts", "dall-e", "image", "moderation", "transcribe",
            "realtime", "search", "audio", "davinci", "babbage", "computer-use", "codex")


def entry(provider, model_id, input_price, output_price, cached_price=None, name=None,
          source=None):
    """One picker entry; prices in pico-dollars per token (None when unknown)."""
    return {
        "key": provider + ":" + model_id,
        "provider": provider,
        "id": model_id,
        "name": name or model_id,
        "input": input_price,
        "output": output_price,
        "cached": cached_price,
        "source": source,
    }


def is_chat_model(model_id: str) -> bool:
    lowered = model_id.lower()
    return all(word not in lowered for word in NOT_CHAT)


def openai_models(listing, prices) -> list:
    """`GET /openai/v1/models` + `GET /prices` -> chat models the relay can price (the relay
    refuses an OpenAI model without a price, so the others are left out)."""
    table = (prices or {}).get("openai") or {}
    out = []
    for item in _data(listing):
        model_id = item.get("id") if isinstance(item, dict) else None
        price = table.get(model_id) if isinstance(model_id, str) else None
        if not isinstance(price, dict) or not is_chat_model(model_id):
            continue
        per_token = [scaled(price.get(k), 6) for k in ("input", "output", "cached_input")]
        if per_token[0] is None or per_token[1] is None:
            continue
        out.append(entry("openai", model_id, per_token[0], per_token[1], per_token[2],
                         source=price.get("source")))
    return sort_models(out)


def anthropic_models(listing, prices) -> list:
    """`GET /anthropic/v1/models` + `GET /prices` -> Claude models the relay can price. The list
    names dated ids (claude-sonnet-4-5-20250929); the price table their families, as the relay
    prices them."""
    table = (prices or {}).get("anthropic") or {}
    out = []
    for item in _data(listing):
        model_id = item.get("id") if isinstance(item, dict) else None
        if not isinstance(model_id, str):
            continue
        price = table.get(family(model_id, table))
        if not isinstance(price, dict):
            continue
        per_token = [scaled(price.get(k), 6) for k in ("input", "output", "cached_input")]
        if per_token[0] is None or per_token[1] is None:
            continue
        name = item.get("display_name") if isinstance(item.get("display_name"), str) else None
        out.append(entry("anthropic", model_id, per_token[0], per_token[1], per_token[2],
                         name=name, source=price.get("source")))
    return sort_models(out)


def family(model_id: str, table) -> str:
    """The priced name a model id falls under: itself, else the longest priced name it starts
    with whose rest is a date or `latest` (`claude-sonnet-4-5-20250929` -> `claude-sonnet-4-5`),
    as the relay's price lookup reads it. "" when none."""
    if model_id in table:
        return model_id
    parts = model_id.split("-")
    for cut in range(len(parts) - 1, 0, -1):
        rest = parts[cut:]
        if "-".join(parts[:cut]) in table and all(p.isdigit() or p == "latest" for p in rest):
            return "-".join(parts[:cut])
    return ""


def price_listing(prices, provider) -> dict:
    """A /models-like listing of the models in the relay's price table (when the provider's
    own list cannot be fetched)."""
    table = (prices or {}).get(provider) or {}
    return {"data": [{"id": model_id} for model_id in table]}


def openrouter_models(listing) -> list:
    """`GET /openrouter/v1/models` -> every model, priced from its `pricing` (USD per token)."""
    out = []
    for item in _data(listing):
        if not isinstance(item, dict) or not isinstance(item.get("id"), str):
            continue
        pricing = item.get("pricing") if isinstance(item.get("pricing"), dict) else {}
        name = item.get("name") if isinstance(item.get("name"), str) else None
        out.append(entry("openrouter", item["id"], scaled(pricing.get("prompt"), 12),
                         scaled(pricing.get("completion"), 12),
                         scaled(pricing.get("input_cache_read"), 12), name=name,
                         source="OpenRouter /models"))
    return sort_models(out)


def _data(listing) -> list:
    data = listing.get("data") if isinstance(listing, dict) else None
    return data if isinstance(data, list) else []


def sort_models(models) -> list:
    order = {p: i for i, p in enumerate(PROVIDERS)}
    return sorted(models, key=lambda m: (order.get(m["provider"], 9), m["id"].lower()))


def search(models, query: str) -> list:
    """Models whose id, name or provider contain every word of `query` (case-insensitive)."""
    words = str(query or "").lower().split()
    if not words:
        return list(models)
    found = []
    for model in models:
        hay = model.get("hay")
        if hay is None:  # made once per model: a picker searches on every key press
            hay = model["hay"] = (model["key"] + " " + model["name"] + " " +
                                  PROVIDER_NAMES.get(model["provider"], "")).lower()
        if all(word in hay for word in words):
            found.append(model)
    return found


def find(models, key):
    for model in models:
        if model["key"] == key:
            return model
    return None


def price_text(model) -> str:
    """"$0.15 in · $0.60 out per 1M tokens", "free" or "price unknown"."""
    if model["input"] is None or model["output"] is None:
        return "price unknown (the provider reports the cost)"
    if model["input"] == 0 and model["output"] == 0:
        return "free"
    return per_million(model["input"]) + " in · " + per_million(model["output"]) + \
        " out per 1M tokens"


def option_label(model) -> str:
    """"gpt-4o-mini · $0.15 / $0.60" (input / output per 1M tokens, said once in the page)."""
    if model["input"] is None or model["output"] is None:
        return model["id"] + " · price varies"
    if model["input"] == 0 and model["output"] == 0:
        return model["id"] + " · free"
    return model["id"] + " · " + per_million(model["input"]) + " / " + \
        per_million(model["output"])


def reply_cost(model, usage):
    """(pico-dollars or None, source) for one reply: the provider's reported `usage.cost`
    (OpenRouter) when present, else tokens x the picker's prices."""
    if not isinstance(usage, dict):
        return None, "unknown"
    if "cost" in usage and usage.get("cost") is not None:
        reported = scaled(usage.get("cost"), 12)
        if reported is not None:
            return reported, "reported"
    tokens = usage_tokens(usage)
    if model is None or model["input"] is None or model["output"] is None:
        return None, "unknown"
    cached = min(tokens["cached"], tokens["input"])
    cached_price = model["cached"] if model["cached"] is not None else model["input"]
    cost = ((tokens["input"] - cached) * model["input"] + cached * cached_price +
            tokens["output"] * model["output"])
    return cost, "computed"


def usage_tokens(usage) -> dict:
    """An OpenAI-style `usage` -> {"input", "output", "cached", "reasoning"} token counts."""
    usage = usage if isinstance(usage, dict) else {}
    prompt_details = usage.get("prompt_tokens_details") or {}
    completion_details = usage.get("completion_tokens_details") or {}
    return {
        "input": _count(usage.get("prompt_tokens")),
        "output": _count(usage.get("completion_tokens")),
        "cached": _count(prompt_details.get("cached_tokens")
                         if isinstance(prompt_details, dict) else 0),
        "reasoning": _count(completion_details.get("reasoning_tokens")
                            if isinstance(completion_details, dict) else 0),
    }


def _count(value) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0
