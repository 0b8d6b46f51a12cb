"""Spend charts as Vega-Lite specs (plain dicts; the page hands them to vega-embed).

Money is summed exactly in pico-dollars (1e-12 USD); only the numbers handed to the chart are
floats. A day's bar always totals the authoritative per-day cost (what budgets use, and what an
admin may overwrite); when the itemised requests do not add up to it, the difference is shown
as its own "other" segment rather than silently dropped.
Runs under CPython and MicroPython.
"""

from catalog import scaled

OTHER = "(other)"  # cost of a day not explained by the listed requests (older, or overwritten)
PICO = 10 ** 12


def pico(value) -> int:
    amount = scaled(value, 12)
    return amount if amount is not None else 0


def day_totals(items) -> dict:
    """[{"date", "cost"}] -> {date: pico}."""
    totals = {}
    for item in items or []:
        if isinstance(item, dict) and isinstance(item.get("date"), str):
            day = item["date"][:10]
            totals[day] = totals.get(day, 0) + pico(item.get("cost"))
    return totals


def stacked_rows(totals, items, dates, group: str = "model") -> list:
    """Rows {"date", group, "cost" (USD float)} for `dates`, one per (date, group), sorted.

    totals: {date: pico} (authoritative per-day cost; None to trust the items alone);
    items: [(date, group value, pico)], e.g. from the request ledger.
    """
    wanted = set(dates)
    by_day = {}
    for day, name, amount in items:
        if day not in wanted:
            continue
        groups = by_day.setdefault(day, {})
        key = name or "?"
        groups[key] = groups.get(key, 0) + amount
    rows = []
    for day in sorted(wanted):
        groups = by_day.get(day, {})
        itemised = sum(groups.values())
        total = itemised if totals is None else totals.get(day, 0)
        if itemised > total:  # an admin lowered the day: the day total is what counts
            groups = {OTHER: total} if total else {}
        elif total > itemised:
            groups = dict(groups)
            groups[OTHER] = groups.get(OTHER, 0) + total - itemised
        for name in sorted(groups):
            if groups[name]:
                rows.append({"date": day, group: name, "cost": groups[name] / PICO})
    return rows


def spend_spec(rows, dates, group: str = "model", title: str = "Spend by day (UTC dates)",
               group_title: str = "Model") -> dict:
    """Stacked bars of spend per day coloured by `group`, next to the total per `group`."""
    money_axis = {"format": "$.2~r", "title": "USD"}
    color = {"field": group, "type": "nominal", "title": group_title,
             "legend": {"orient": "bottom", "columns": 2, "labelLimit": 260}}
    return {
        "data": {"values": rows},
        "config": {"view": {"stroke": None}, "axis": {"labelFontSize": 11}},
        "hconcat": [
            {
                "title": title,
                "width": 380,
                "height": 220,
                "mark": {"type": "bar", "tooltip": True},
                "encoding": {
                    "x": {"field": "date", "type": "ordinal", "title": None,
                          "scale": {"domain": list(dates)}, "axis": {"labelAngle": -45}},
                    "y": {"aggregate": "sum", "field": "cost", "type": "quantitative",
                          "axis": money_axis},
                    "color": color,
                    "tooltip": [
                        {"field": "date", "type": "ordinal", "title": "Date"},
                        {"field": group, "type": "nominal", "title": group_title},
                        {"aggregate": "sum", "field": "cost", "type": "quantitative",
                         "title": "USD", "format": "$.3~r"},
                    ],
                },
            },
            {
                "title": "Total by " + group_title.lower(),
                "width": 220,
                "mark": {"type": "bar", "tooltip": True},
                "encoding": {
                    "y": {"field": group, "type": "nominal", "title": None, "sort": "-x",
                          "axis": {"labelLimit": 160}},
                    "x": {"aggregate": "sum", "field": "cost", "type": "quantitative",
                          "axis": money_axis},
                    "color": {"field": group, "type": "nominal", "title": group_title},
                    "tooltip": [
                        {"field": group, "type": "nominal", "title": group_title},
                        {"aggregate": "sum", "field": "cost", "type": "quantitative",
                         "title": "USD", "format": "$.3~r"},
                    ],
                },
            },
        ],
    }
