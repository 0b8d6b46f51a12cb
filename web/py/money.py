"""Money for display, exact: USD amounts as integer micro-dollars, parsed from the relay's JSON.

Runs under CPython and MicroPython (the browser pages), so no `decimal`: amounts arrive as
strings or numbers and are turned into whole micro-dollars, which add and subtract exactly.
"""

MICROS = 1_000_000


def to_micros(value) -> int:
    """USD as a string ("0.1"), int or float -> integer micro-dollars (rounded half up).

    Raises ValueError on anything else (None, "", "abc", booleans, NaN).
    """
    if isinstance(value, bool) or value is None:
        raise ValueError(f"not an amount: {value!r}")
    if isinstance(value, int):
        return value * MICROS
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError("not a finite amount")
        value = f"{value:.9f}"  # through text, so 0.1 stays 0.1
    return _parse_decimal_text(str(value).strip())


def _parse_decimal_text(text: str) -> int:
    sign = 1
    if text[:1] in ("-", "+"):
        sign = -1 if text[0] == "-" else 1
        text = text[1:]
    whole, _, frac = text.partition(".")
    if not whole and not frac:
        raise ValueError("not an amount")
    if not (whole.isdigit() or whole == "") or not (frac.isdigit() or frac == ""):
        raise ValueError(f"not an amount: {text!r}")
    micros = int(whole or "0") * MICROS + int((frac + "000000")[:6])
    if frac[6:7] and int(frac[6]) >= 5:  # half up on the 7th decimal
        micros += 1
    return sign * micros


def format_usd(micros: int, places: int = 4) -> str:
    """Integer micro-dollars -> "$0.0123" with `places` decimals (0 to 6), rounded half up."""
    sign = "-" if micros < 0 else ""
    micros = abs(micros)
    step = 10 ** (6 - places)
    units = (micros + step // 2) // step
    whole, frac = divmod(units, 10**places)
    if places == 0:
        return f"{sign}${whole}"
    digits = ("0" * places + str(frac))[-places:]
    return f"{sign}${whole}.{digits}"


def friendly_usd(micros: int, floor: bool = False) -> str:
    """Integer micro-dollars -> "$1.00", "$0.075", "$0.0012", "$0.000004": cents at least, up to
    4 decimals (6 for sub-cent amounts that would show as zero), no "$1.0000". `floor` rounds
    down instead of half up: what is left of a budget is never overstated ($0.9999, not $1.00)."""
    places = 4 if abs(micros) >= 100 else 6
    if floor and places == 4 and micros > 0:
        micros -= micros % 100
    text = format_usd(micros, places)
    while len(text) - text.index(".") > 3 and text.endswith("0"):
        text = text[:-1]
    return text


def usd(value, places: int = 4) -> str:
    """Any amount the relay sends -> display text; "—" when it is missing or unreadable."""
    try:
        return format_usd(to_micros(value), places)
    except ValueError:
        return "—"


def plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def budget_text(budget) -> str:
    """The deployment's default budget (config.json "budget") as a sentence fragment."""
    if not budget:
        return "no default budget (the operator sets budgets per user or domain)"
    try:
        limit = to_micros(budget.get("limit"))
        days = int(budget.get("days"))
    except (ValueError, TypeError):
        return "a budget set by the operator"
    if limit <= 0:
        return "no free budget (the operator grants budgets per user or domain)"
    return format_usd(limit, 2) + " per user over " + plural(days, "day")


def spend_summary(usage) -> dict:
    """The /usage answer -> what the pages show: spend, limit, remaining, share used, a sentence.

    `usage` is {"email", "days", "cost", "limit", "usage": [...]}; cost and limit in USD.
    """
    spent = _micros_or_zero(usage.get("cost"))
    limit = _micros_or_zero(usage.get("limit"))
    days = usage.get("days") or 1
    remaining = limit - spent if limit > spent else 0
    fraction = 1.0 if limit <= 0 else min(1.0, spent / limit)
    exhausted = spent >= limit
    window = plural(days, "day")
    text = friendly_usd(spent) + " of " + friendly_usd(limit) + " used in the last " + window
    if exhausted:
        text += " — budget used up; it frees up as older days leave the window"
    return {
        "spent": friendly_usd(spent),
        "limit": friendly_usd(limit),
        "remaining": friendly_usd(remaining, floor=True),
        "percent": int(fraction * 100 + 0.5),
        "days": days,
        "exhausted": exhausted,
        "text": text,
    }


def _micros_or_zero(value) -> int:
    try:
        return to_micros(value)
    except ValueError:
        return 0
