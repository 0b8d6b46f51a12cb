"""Money in the pages, exact, in ONE unit: integer pico-dollars (1e-12 USD).

Pico-dollars hold per-token prices exactly — $0.15 per 1M tokens is 150,000 pico-dollars per
token, and so is OpenRouter's "0.00000015" per token — so a reply's cost (tokens x price) and any
sum of costs are whole numbers, nothing lost to floats or to rounding each price (micro-dollars
would round $0.075 per 1M tokens to zero). Amounts arrive from the relay's JSON as text or
numbers, are read once with `pico()` (or `scaled()` for other scales), added as integers and
shown with `usd()`. Runs under CPython and MicroPython (no `decimal` there).
"""

PICO = 10 ** 12  # pico-dollars in a dollar


def scaled(value, places: int = 12):
    """A decimal amount (JSON number or text, exponent allowed) -> int(value * 10**places),
    rounded half up: with the default 12 places, USD -> pico-dollars; with 6, a price in USD per
    1M tokens -> pico-dollars per token.

    None for anything unreadable or negative (OpenRouter says "-1" for "varies").
    """
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return value * 10 ** places if value >= 0 else None
    if isinstance(value, float):
        if value != value or value < 0 or value == float("inf"):
            return None
        value = f"{value:.15f}"  # through text, so 0.1 stays 0.1
    text = str(value).strip()
    mantissa, exponent = text, 0
    for mark in ("e", "E"):
        if mark in text:
            mantissa, _, exp_text = text.partition(mark)
            try:
                exponent = int(exp_text)
            except ValueError:
                return None
    if mantissa.startswith("-"):
        return None
    if mantissa.startswith("+"):
        mantissa = mantissa[1:]
    whole, _, frac = mantissa.partition(".")
    if not (whole + frac).isdigit():
        return None
    shift = places + exponent
    digits = whole + frac
    point = len(whole) + shift  # where the decimal point falls in `digits` once scaled
    if point <= 0:
        kept, rest = "0", "0" * (-point) + digits
    elif point >= len(digits):
        kept, rest = digits + "0" * (point - len(digits)), ""
    else:
        kept, rest = digits[:point], digits[point:]
    result = int(kept)
    if rest and int(rest[0]) >= 5:
        result += 1
    return result


def pico(value) -> int:
    """An amount in USD the relay sent -> pico-dollars; 0 when it is missing or unreadable."""
    amount = scaled(value)
    return amount if amount is not None else 0


def usd(amount, floor: bool = False) -> str:
    """Pico-dollars -> "$1.00", "$0.075", "$0.0123", "$0.0000015": cents at least, up to 4
    decimals, more for small amounts so that two significant digits show (up to 10), trailing
    zeros dropped down to cents. A positive amount too small to show is "<$0.0000000001", never
    "$0.00"; None is "—". `floor` rounds down instead of half up at the decimals shown: what is
    left of a budget is never overstated ($0.9999 left, not $1.00)."""
    if amount is None:
        return "—"
    sign = "-" if amount < 0 else ""
    amount = abs(amount)
    if amount == 0:
        return "$0.00"
    places = 4
    while places < 10 and amount < 10 ** (12 - places + 1):
        places += 1
    step = 10 ** (12 - places)
    units = amount // step if floor and not sign else (amount + step // 2) // step
    if units == 0:
        return sign + "<$0.0000000001"
    whole, frac = divmod(units, 10 ** places)
    digits = (("0" * places) + str(frac))[-places:]
    while len(digits) > 2 and digits.endswith("0"):
        digits = digits[:-1]
    return sign + "$" + str(whole) + "." + digits


def per_million(pico_per_token) -> str:
    """Pico-dollars per token -> "$0.15" per 1M tokens (at least 2 decimals); "?" if unknown."""
    if pico_per_token is None:
        return "?"
    # pico-dollars per token are micro-dollars per 1M tokens
    whole, frac = divmod(pico_per_token, 10 ** 6)
    digits = ("000000" + str(frac))[-6:].rstrip("0")
    while len(digits) < 2:
        digits += "0"
    return "$" + str(whole) + "." + digits


def plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def budget_text(budget) -> str:
    """The deployment's default budget (config.json "budget") as a sentence fragment."""
    if not budget:
        return "no default budget (the operator sets budgets per user or domain)"
    limit = scaled(budget.get("limit"))
    try:
        days = int(budget.get("days"))
    except (ValueError, TypeError):
        days = None
    if limit is None or days is None:
        return "a budget set by the operator"
    if limit <= 0:
        return "no free budget (the operator grants budgets per user or domain)"
    return usd(limit) + " per user over " + plural(days, "day")


def spend_summary(usage) -> dict:
    """The /usage answer -> what the pages show: spend, limit, what is left (rounded down), the
    share used (0-100), whether anything is spent or all of it, and a sentence.

    `usage` is {"email", "days", "cost", "limit", "usage": [...]}; cost and limit in USD.
    """
    spent, limit = pico(usage.get("cost")), pico(usage.get("limit"))
    days = int(usage.get("days") or 1)
    left = limit - spent if limit > spent else 0
    exhausted = spent >= limit
    text = usd(spent) + " of " + usd(limit) + " used in the last " + plural(days, "day")
    if exhausted:
        text += " — budget used up; it frees up as older days leave the window"
    return {
        "spent": usd(spent),
        "limit": usd(limit),
        "remaining": usd(left, floor=True),
        "percent": 100 if limit <= 0 else min(100, (spent * 100 + limit // 2) // limit),
        "days": days,
        "exhausted": exhausted,
        "some": spent > 0,
        "text": text,
    }
