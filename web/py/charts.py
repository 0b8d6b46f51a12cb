"""Spend charts as Vega specs (plain dicts; the page hands them to vega), and the legend
beside them.

Money is summed exactly in pico-dollars (1e-12 USD); only the numbers handed to the chart are
floats. A day's bar always totals the authoritative per-day cost (what budgets use, and what an
admin may overwrite); when the itemised requests do not add up to it, the difference is shown
as its own "(other)" segment rather than silently dropped. Many series (one per user on a
large install) are cut to the top few plus one "N more" series, so colours stay tellable apart.
Runs under CPython and MicroPython.
"""

import dates
from money import PICO, pico, usd

OTHER = "(other)"  # cost of a day not explained by the listed requests (older, overwritten)
TOP = 7  # series shown by name; the rest become one "N more" series
# Tableau 10 (Vega's default scheme): tellable apart, and readable on light and dark.
PALETTE = ("#4c78a8", "#f58518", "#54a24b", "#e45756", "#72b7b2", "#eeca3b", "#b279a2",
           "#ff9da6", "#9d755d", "#bab0ac")
REST_COLOUR = "#8d99ae"
OTHER_COLOUR = "#c3cad5"
THEMES = {  # axis text and lines, matching aipipe.css
    "light": {"text": "#4f5b6d", "grid": "#e2e6ec", "domain": "#c9d1dc"},
    "dark": {"text": "#a3aec0", "grid": "#263041", "domain": "#364257"},
}


def day_totals(items) -> dict:
    """[{"date", "cost"}] -> {date: pico}."""
    totals = {}
    for item in items or []:
        if isinstance(item, dict) and isinstance(item.get("date"), str):
            day = item["date"][:10]
            totals[day] = totals.get(day, 0) + pico(item.get("cost"))
    return totals


def stacked_rows(totals, items, days, group: str = "model") -> list:
    """Rows {"date", group, "pico", "cost" (USD float)} for `days`, one per (date, group), sorted.

    totals: {date: pico} (authoritative per-day cost; None to trust the items alone);
    items: [(date, group value, pico)], e.g. from the request ledger.
    """
    wanted = set(days)
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
                rows.append({"date": day, group: name, "pico": groups[name],
                             "cost": groups[name] / PICO})
    return rows


def key_totals(rows, group: str) -> dict:
    totals = {}
    for row in rows:
        totals[row[group]] = totals.get(row[group], 0) + row["pico"]
    return totals


def series(rows, group: str) -> list:
    """The series in legend (and stacking) order: biggest total first, "N more" and "(other)"
    (cost not itemised) last."""
    totals = key_totals(rows, group)
    named = [k for k in totals if k != OTHER and not is_rest(k)]
    named = sorted(named, key=lambda k: (-totals[k], k))
    tail = [k for k in totals if is_rest(k)] + [k for k in totals if k == OTHER]
    return named + tail


def rest_label(count: int, noun: str) -> str:
    return str(count) + " more " + (noun if count == 1 else noun + "s")


def is_rest(key) -> bool:
    parts = str(key).split(" ")
    return len(parts) == 3 and parts[0].isdigit() and parts[1] == "more"


def top_n(rows, group: str, noun: str, n: int = TOP) -> list:
    """Rows with all but the `n` biggest series merged, per day, into one "N more <noun>s"."""
    order = [k for k in series(rows, group) if k != OTHER]
    if len(order) <= n + 1:  # folding a single series into "1 more" would hide a name for nothing
        return rows
    keep = set(order[:n])
    label = rest_label(len(order) - n, noun)
    out, rest = [], {}
    for row in rows:
        if row[group] in keep or row[group] == OTHER:
            out.append(row)
        else:
            rest[row["date"]] = rest.get(row["date"], 0) + row["pico"]
    for day in rest:
        out.append({"date": day, group: label, "pico": rest[day], "cost": rest[day] / PICO})
    return sorted(out, key=lambda r: (r["date"], r[group]))


def colours(keys) -> list:
    """A colour per series: the palette in order, grey for "N more", light grey for "(other)"."""
    out, index = [], 0
    for key in keys:
        if key == OTHER:
            out.append(OTHER_COLOUR)
        elif is_rest(key):
            out.append(REST_COLOUR)
        else:
            out.append(PALETTE[index % len(PALETTE)])
            index += 1
    return out


def legend_entries(rows, group: str) -> list:
    """[(colour, name, total text)] in series order, for the legend beside the chart."""
    keys = series(rows, group)
    totals = key_totals(rows, group)
    shades = colours(keys)  # (no zip(strict=...) in MicroPython)
    return [(shades[i], key, usd(totals[key])) for i, key in enumerate(keys)]


def label_dates(days, max_labels: int) -> list:
    """Which dates get an axis label: at most `max_labels`, evenly spaced, today always."""
    count = len(days)
    if count == 0:
        return []
    step = 1
    while (count + step - 1) // step > max(1, max_labels):
        step += 1
    return [days[i] for i in range(count) if (count - 1 - i) % step == 0]


def with_labels(rows) -> list:
    """Each row also carries its date as "Mar 5" and its cost as text, for tooltips."""
    out = []
    for row in rows:
        copy = dict(row)
        copy["day"] = dates.short(row["date"])
        copy["amount"] = usd(row["pico"])
        out.append(copy)
    return out


def spend_spec(rows, days, group: str = "model", group_title: str = "Model",
               theme: str = "light", max_labels: int = 10, height: int = 240,
               description: str = "Spend by day", width: int = 600) -> dict:
    """A Vega spec (drawn by vega alone: no Vega-Lite compile in the page) of stacked bars of
    spend per day coloured by `group`, `width` pixels wide including its axes (the page passes
    its card's width and resizes the view with it); short date labels that never overlap; the
    legend is the page's own (legend_entries); hovering a segment shows date, series and cost."""
    keys = series(rows, group)
    look = THEMES.get(theme, THEMES["light"])
    labels = {}
    for day in days:
        labels[day] = dates.short(day)
    axis = {"labelColor": look["text"], "labelFontSize": 12, "labelPadding": 6, "ticks": False,
            "labelFont": FONT, "domainColor": look["domain"]}
    x_axis = dict(axis)
    x_axis.update({"orient": "bottom", "scale": "x", "values": label_dates(list(days), max_labels),
                   "encode": {"labels": {"update": {"text": {"signal": _lookup(labels)}}}}})
    y_axis = dict(axis)
    y_axis.update({"orient": "left", "scale": "y", "format": "$.2~r", "tickCount": 4,
                   "grid": True, "gridColor": look["grid"], "domain": False})
    return {
        "description": description,
        "width": width,
        "height": height,
        "autosize": {"type": "fit-x", "contains": "padding"},
        "padding": {"left": 2, "top": 8, "right": 6, "bottom": 6},  # (room for the text's own box)
        "background": None,
        "data": [{
            "name": "spend",
            "values": with_labels(rows),
            "transform": [
                {"type": "formula", "as": "key", "expr": "datum[" + _quote(group) + "]"},
                {"type": "formula", "as": "rank", "expr": _rank_expr(keys)},
                {"type": "stack", "groupby": ["date"], "field": "cost",
                 "sort": {"field": "rank"}},
            ],
        }],
        "scales": [
            {"name": "x", "type": "band", "domain": list(days), "range": "width",
             "paddingInner": 0.25, "paddingOuter": 0.1},
            {"name": "y", "type": "linear", "domain": {"data": "spend", "field": "y1"},
             "range": "height", "nice": True, "zero": True},
            {"name": "colour", "type": "ordinal", "domain": keys, "range": colours(keys)},
        ],
        "axes": [x_axis, y_axis],
        "marks": [{
            "type": "rect",
            "from": {"data": "spend"},
            "encode": {
                "enter": {
                    "x": {"scale": "x", "field": "date"},
                    "width": {"scale": "x", "band": 1},
                    "y": {"scale": "y", "field": "y1"},
                    "y2": {"scale": "y", "field": "y0"},
                    "fill": {"scale": "colour", "field": "key"},
                    "tooltip": {"signal": "{'Date (UTC)': datum.day, " + _quote(group_title) +
                                          ": datum.key, 'Cost': datum.amount}"},
                },
                "update": {"fillOpacity": {"value": 1}},
                "hover": {"fillOpacity": {"value": 0.8}},
            },
        }],
    }


FONT = "system-ui, -apple-system, Segoe UI, Roboto, sans-serif"


def _quote(text: str) -> str:
    return "'" + str(text).replace("\\", "\\\\").replace("'", "\\'") + "'"


def _lookup(labels) -> str:
    """A Vega expression mapping datum.value (an ISO date) to its short label."""
    pairs = [_quote(k) + ": " + _quote(labels[k]) for k in sorted(labels)]
    return "({" + ", ".join(pairs) + "})[datum.value]"


def _rank_expr(keys) -> str:
    """Stack in legend order: the biggest series at the bottom."""
    return "indexof([" + ", ".join(_quote(k) for k in keys) + "], datum.key)"


def total(rows) -> int:
    return sum(row["pico"] for row in rows)


def summary_text(rows, days, group_title: str) -> str:
    """The chart in one sentence, for screen readers (the chart's aria-label)."""
    if not rows:
        return "No spend in the last " + str(len(days)) + " days."
    by_day = {}
    for row in rows:
        by_day[row["date"]] = by_day.get(row["date"], 0) + row["pico"]
    top_day = sorted(by_day, key=lambda d: (-by_day[d], d))[0]
    return ("Spend by day over the last " + str(len(days)) + " days, by " + group_title.lower() +
            ": " + usd(total(rows)) + " in all; the most on " + dates.short(top_day) +
            " (" + usd(by_day[top_day]) + ").")
