"""The usage dashboard's logic: spend against the limit, when budget frees up, the chart data
and the recent-requests table, from `GET /usage` and `GET /usage/requests`.
Runs under CPython and MicroPython.
"""

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
    limit = money.pico(usage.get("limit"))
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
                money.usd(limit) + " is available.", "date": None}
    if spent >= limit:
        freed = 0
        for day in spent_days:
            freed += totals[day]
            if spent - freed < limit:
                back = dates.add_days(day, days)
                return {"text": "Your budget is used up. It frees up on " + dates.short(back) +
                        " (UTC), when the " + money.usd(freed) +
                        " spent up to " + dates.short(day) + " leaves the " + str(days) +
                        "-day window.", "date": back}
    oldest = spent_days[0]
    back = dates.add_days(oldest, days)
    return {"text": money.usd(limit - spent) + " left. The " +
            money.usd(totals[oldest]) + " spent on " + dates.short(oldest) +
            " frees up on " + dates.short(back) + " (UTC).", "date": back}


def chart_rows(usage, requests, today: str) -> list:
    """Rows {"date", "model", "pico", "cost"} over the budget window: the per-day totals of
    /usage, split by model as far as the recent requests explain them, the top models by name."""
    window = window_of(usage, today)
    items = [(r.get("date", "")[:10], r.get("model") or "?", money.pico(r.get("cost")))
             for r in requests if isinstance(r, dict)]
    rows = charts.stacked_rows(charts.day_totals(usage.get("usage")), items, window, "model")
    return charts.top_n(rows, "model", "model")


def chart_spec(usage, requests, today: str, theme: str = "light", max_labels: int = 10,
               width: int = 600) -> dict:
    window = window_of(usage, today)
    rows = chart_rows(usage, requests, today)
    return charts.spend_spec(rows, window, "model", "Model", theme, max_labels,
                             description=charts.summary_text(rows, window, "model"), width=width)


COLUMNS = ("Time (UTC)", "Model", "Tokens in / out", "Cost", "Cost source", "Result", "Latency")
NUMERIC_COLUMNS = (3, 6)


def is_model_list(item) -> bool:
    """A free call listing models (the playground makes one on every visit)."""
    return str(item.get("path") or "").endswith("/models") and not money.pico(item.get("cost"))


def visible_requests(items, show_free: bool) -> tuple:
    """(requests to list, how many free model-list calls are left out)."""
    if show_free:
        return list(items), 0
    kept = [i for i in items if not is_model_list(i)]
    return kept, len(items) - len(kept)


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
        dates.moment(item.get("ts")),
        model,
        tokens,
        money.usd(money.pico(item.get("cost"))),
        SOURCES.get(source, source),
        result.strip(),
        (str(int(latency + 0.5)) + " ms") if isinstance(latency, (int, float)) else "",
    ]


def request_count(items, usage, today: str) -> int:
    """Calls in the budget window, not counting free model lists."""
    window = set(window_of(usage, today))
    return len([i for i in items if isinstance(i, dict) and str(i.get("date", ""))[:10] in window
                and not is_model_list(i)])


def chart_note(rows) -> str:
    """Under the chart, only when needed: what "(other)" is."""
    if any(row["model"] == charts.OTHER for row in rows):
        return ("(other) is cost your recent requests do not itemise: older requests, or a day "
                "an admin corrected.")
    return ""
