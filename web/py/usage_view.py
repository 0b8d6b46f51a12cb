"""The usage dashboard's logic: spend against the limit, when budget frees up, the chart data
and the recent-requests table, from `GET /usage` and `GET /usage/requests`.
Runs under CPython and MicroPython.
"""

import catalog
import charts
import dates
import money

SOURCES = {
    "reported": "reported by the provider",
    "computed": "tokens × price table",
    "estimated": "estimated (no usage reported)",
    "free": "free",
}


def window_of(usage, today: str) -> list:
    return dates.window(today, usage.get("days") or 1)


def frees_up(usage, today: str) -> dict:
    """When budget comes back: each day's spend leaves the rolling window `days` dates later.

    Returns {"text", "date" (ISO or None)}.
    """
    days = int(usage.get("days") or 1)
    limit = charts.pico(usage.get("limit"))
    totals = charts.day_totals(usage.get("usage"))
    in_window = set(dates.window(today, days))
    spent_days = sorted(d for d in totals if d in in_window and totals[d] > 0)
    spent = sum(totals[d] for d in spent_days)
    window = money.plural(days, "day")
    if limit <= 0:
        return {"text": "You have no budget on this AI Pipe: ask its operator for one.",
                "date": None}
    if not spent_days:
        return {"text": "Nothing spent in the last " + window + ": all " +
                catalog.format_pico(limit) + " is available.", "date": None}
    if spent >= limit:
        freed = 0
        for day in spent_days:
            freed += totals[day]
            if spent - freed < limit:
                back = dates.add_days(day, days)
                return {"text": "Your budget is used up. It frees up on " + back +
                        " (UTC), when the " + catalog.format_pico(freed) +
                        " spent up to " + dates.short(day) + " leaves the " + window +
                        " window.", "date": back}
    oldest = spent_days[0]
    back = dates.add_days(oldest, days)
    return {"text": catalog.format_pico(limit - spent) + " left. The " +
            catalog.format_pico(totals[oldest]) + " spent on " + dates.short(oldest) +
            " frees up on " + back + " (UTC).", "date": back}


def summary(usage) -> dict:
    """Spend, limit and remaining as text (small amounts keep their significant digits), the
    share used and whether the budget is used up."""
    spent, limit = charts.pico(usage.get("cost")), charts.pico(usage.get("limit"))
    days = int(usage.get("days") or 1)
    return {
        "spent": catalog.format_pico(spent),
        "limit": catalog.format_pico(limit),
        "remaining": catalog.format_pico(limit - spent if limit > spent else 0),
        "percent": 100 if limit <= 0 else min(100, (spent * 100 + limit // 2) // limit),
        "days": days,
        "exhausted": spent >= limit,
    }


def chart_rows(usage, requests, today: str) -> list:
    """Rows {"date", "model", "cost"} over the budget window: the per-day totals of /usage,
    split by model as far as the recent requests explain them."""
    window = window_of(usage, today)
    items = [(r.get("date", "")[:10], r.get("model") or "?", charts.pico(r.get("cost")))
             for r in requests if isinstance(r, dict)]
    return charts.stacked_rows(charts.day_totals(usage.get("usage")), items, window, "model")


def chart_spec(usage, requests, today: str) -> dict:
    window = window_of(usage, today)
    return charts.spend_spec(chart_rows(usage, requests, today), window, "model",
                             "Spend by day (UTC), last " + money.plural(len(window), "day"),
                             "Model")


COLUMNS = ("Time", "Model", "Tokens in / out", "Cost", "Cost source", "Result", "Latency")


def request_row(item) -> list:
    """One /usage/requests item -> the table's cells (text)."""
    tokens = str(item.get("input_tokens") or 0) + " / " + str(item.get("output_tokens") or 0)
    if item.get("cached_tokens"):
        tokens += " (" + str(item["cached_tokens"]) + " cached)"
    if item.get("reasoning_tokens"):
        tokens += " (" + str(item["reasoning_tokens"]) + " reasoning)"
    source = item.get("cost_source") or ""
    outcome = str(item.get("outcome") or "")
    result = outcome + " " + str(item.get("status") or "")
    if item.get("streamed"):
        result += " · streamed"
    latency = item.get("latency_ms")
    model = str(item.get("model") or item.get("path") or "?")
    if item.get("provider"):
        model += " (" + str(item["provider"]) + ")"
    return [
        dates.timestamp(item.get("ts")),
        model,
        tokens,
        catalog.format_pico(charts.pico(item.get("cost"))),
        SOURCES.get(source, source),
        result.strip(),
        (str(int(latency + 0.5)) + " ms") if isinstance(latency, (int, float)) else "",
    ]
