"""The dashboard's pure modules under CPython: web/py/dates.py (UTC dates without datetime),
charts.py (exact sums, Vega-Lite specs) and usage_view.py (spend, frees-up, table rows)."""

from __future__ import annotations

import itertools
from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.test_web_py_playground import _load

dates, charts, money, usage_view = (_load("dates"), _load("charts"), _load("money"),
                                    _load("usage_view"))


# -- dates -----------------------------------------------------------------------------------
@given(st.dates(min_value=date(1, 1, 1), max_value=date(9999, 12, 31)))
def test_day_numbers_match_datetime(day: date) -> None:
    """Day arithmetic agrees with the standard library for every date."""
    n = dates.to_days(day.isoformat())
    assert n == (day - date(1970, 1, 1)).days
    assert dates.from_days(n) == day.isoformat()


@pytest.mark.parametrize("text", ["2026-02-29", "2026-13-01", "2026-1-01", "abcd-ef-gh", ""])
def test_bad_dates_are_refused(text: str) -> None:
    """Impossible or malformed dates raise (and is_date says no) instead of rolling over."""
    with pytest.raises(ValueError):
        dates.to_days(text)
    assert not dates.is_date(text)


def test_window_short_and_timestamp() -> None:
    """The budget window is today and the previous days-1 dates, oldest first."""
    assert dates.window("2026-03-01", 3) == ["2026-02-27", "2026-02-28", "2026-03-01"]
    assert dates.add_days("2024-02-28", 1) == "2024-02-29"
    assert dates.short("2026-01-05") == "Jan 5"
    assert dates.timestamp("2026-01-05T10:11:12.345678Z") == "2026-01-05 10:11:12 UTC"
    assert dates.moment("2026-01-05T10:11:12.345678Z") == "Jan 5, 10:11:12"
    assert dates.moment("not a time") == "not a time"


# -- charts ----------------------------------------------------------------------------------
def cells(rows: list[dict], group: str = "model") -> list[tuple]:
    return [(r["date"], r[group], r["cost"]) for r in rows]


def test_stacked_rows_total_the_authoritative_day_cost() -> None:
    """Each day's segments add up to the recorded day total: the unexplained rest is "Not
    itemised", a day lowered by an admin shows only its total, sums are exact."""
    items = [("2026-01-02", "a", money.pico(0.1)), ("2026-01-02", "a", money.pico(0.2)),
             ("2026-01-02", "b", money.pico("0.05")), ("2026-01-03", "a", money.pico(1)),
             ("2025-12-01", "a", money.pico(9))]  # outside the window: ignored
    totals = {"2026-01-02": money.pico("0.4"), "2026-01-03": money.pico("0.5")}
    rows = charts.stacked_rows(totals, items, ["2026-01-02", "2026-01-03"])
    assert cells(rows) == [
        ("2026-01-02", "(other)", 0.05),
        ("2026-01-02", "a", 0.3),  # 0.1 + 0.2 exactly, not 0.30000000000000004
        ("2026-01-02", "b", 0.05),
        ("2026-01-03", "(other)", 0.5),
    ]
    assert rows[1]["pico"] == 300_000_000_000
    assert cells(charts.stacked_rows(None, items, ["2026-01-03"])) == [("2026-01-03", "a", 1.0)]


def test_series_order_colours_and_legend() -> None:
    """Series go biggest first, "N more" and "(other)" last; each gets a palette colour
    (greys for the last two), and the legend lists them in that order with exact totals."""
    rows = charts.stacked_rows(None, [("d", "small", 10**10), ("d", "big", 5 * 10**11),
                                      ("d", "3 more models", 10**11)], ["d"])
    rows.append({"date": "d", "model": charts.OTHER, "pico": 10**12, "cost": 1.0})
    assert charts.series(rows, "model") == ["big", "small", "3 more models", "(other)"]
    assert charts.colours(charts.series(rows, "model")) == [
        charts.PALETTE[0], charts.PALETTE[1], charts.REST_COLOUR, charts.OTHER_COLOUR]
    assert charts.legend_entries(rows, "model")[:2] == [(charts.PALETTE[0], "big", "$0.50"),
                                                       (charts.PALETTE[1], "small", "$0.01")]


def test_top_n_keeps_day_totals() -> None:
    """Beyond the top series the rest fold into one per day; one extra series is not folded
    (naming it costs no more room than "1 more")."""
    days = ["d1", "d2"]
    items = [(d, f"m{i}", (i + 1) * 10**9) for d in days for i in range(10)]
    rows = charts.stacked_rows(None, items, days)
    top = charts.top_n(rows, "model", "model", 3)
    assert sorted({r["model"] for r in top}) == ["7 more models", "m7", "m8", "m9"]
    for day in days:
        assert sum(r["pico"] for r in top if r["date"] == day) == sum(
            r["pico"] for r in rows if r["date"] == day)
    assert charts.top_n(rows, "model", "model", 9) == rows


def test_date_labels_never_crowd_the_axis() -> None:
    """At most `max_labels` dates get a label, evenly spaced, today's always among them."""
    window = dates.window("2026-03-30", 30)
    for room in (2, 4, 5, 10, 30, 60):
        labelled = charts.label_dates(window, room)
        assert len(labelled) <= room and labelled[-1] == "2026-03-30"
        gaps = {dates.to_days(b) - dates.to_days(a) for a, b in itertools.pairwise(labelled)}
        assert len(gaps) <= 1  # evenly spaced
    assert charts.label_dates(window[:7], 10) == window[:7]


def test_spend_spec_fills_its_card_with_short_dates_and_tooltips() -> None:
    """The Vega spec: the card's width (axes included), a band per window date (empty ones too),
    short date labels (a lookup, no rotation) on as many dates as fit, stacked bars biggest
    series first with the page's own legend, tooltips with the date, series and cost as text,
    and the theme's axis colours — data only, no URLs."""
    rows = charts.stacked_rows(None, [("2026-03-02", "openai", 10**11)],
                               ["2026-03-01", "2026-03-02"], "provider")
    spec = charts.spend_spec(rows, ["2026-03-01", "2026-03-02"], "provider", "Provider",
                             theme="dark", max_labels=1, width=777)
    assert spec["width"] == 777 and spec["autosize"] == {"type": "fit-x", "contains": "padding"}
    scales = {scale["name"]: scale for scale in spec["scales"]}
    assert scales["x"]["type"] == "band" and scales["x"]["domain"] == ["2026-03-01", "2026-03-02"]
    assert scales["colour"] == {"name": "colour", "type": "ordinal", "domain": ["openai"],
                                "range": [charts.PALETTE[0]]}
    x_axis, y_axis = spec["axes"]
    assert x_axis["values"] == ["2026-03-02"] and "labelAngle" not in x_axis
    assert "'2026-03-02': 'Mar 2'" in x_axis["encode"]["labels"]["update"]["text"]["signal"]
    assert x_axis["labelColor"] == y_axis["labelColor"] == charts.THEMES["dark"]["text"]
    assert y_axis["format"] == "$.2~r" and y_axis["gridColor"] == charts.THEMES["dark"]["grid"]
    values = spec["data"][0]["values"]
    assert values[0]["day"] == "Mar 2" and values[0]["amount"] == "$0.10"
    stack = spec["data"][0]["transform"][-1]
    assert stack["type"] == "stack" and stack["groupby"] == ["date"]
    tooltip = spec["marks"][0]["encode"]["enter"]["tooltip"]["signal"]
    assert tooltip == "{'Date (UTC)': datum.day, 'Provider': datum.key, 'Cost': datum.amount}"
    assert "url" not in str(spec) and "$schema" not in spec


def test_summary_text_names_the_busiest_day() -> None:
    rows = charts.stacked_rows(None, [("2026-03-01", "a", 10**11), ("2026-03-02", "a", 3 * 10**11)],
                               ["2026-03-01", "2026-03-02"])
    assert charts.summary_text(rows, ["2026-03-01", "2026-03-02"], "Model") == (
        "Spend by day over the last 2 days, by model: $0.40 in all; the most on Mar 2 ($0.30).")
    assert charts.summary_text([], ["d"] * 7, "Model") == "No spend in the last 7 days."


# -- usage_view ------------------------------------------------------------------------------
TODAY = "2026-03-10"


def usage(limit: str, per_day: dict[str, str], days: int = 7) -> dict:
    total = sum(float(v) for v in per_day.values())
    return {"days": days, "limit": float(limit), "cost": total,
            "usage": [{"date": d, "cost": float(c)} for d, c in per_day.items()]}


def test_frees_up_when_enough_old_spend_leaves_the_window() -> None:
    """Used up: the date is when enough of the oldest spend has left the 7-day window to get
    back under the limit — not merely when the oldest day leaves."""
    # $1.20 spent: once 03-05 leaves (on 03-12), $0.90 remain, under the limit.
    data = usage("1.0", {"2026-03-05": "0.3", "2026-03-06": "0.5", "2026-03-09": "0.4"})
    result = usage_view.frees_up(data, TODAY)
    assert result["date"] == "2026-03-12"
    assert result["text"] == ("Your budget is used up. It frees up on Mar 12 (UTC), when the "
                              "$0.30 spent up to Mar 5 leaves the 7-day window.")
    # $1.20 spent, but 03-05 holds only $0.10: $1.10 is still over, so 03-06 must leave too.
    data = usage("1.0", {"2026-03-05": "0.1", "2026-03-06": "0.5", "2026-03-09": "0.6"})
    assert usage_view.frees_up(data, TODAY)["date"] == "2026-03-13"


def test_frees_up_sentences() -> None:
    """Not used up: what is left and when the oldest spend returns; nothing spent; no budget."""
    data = usage("1.0", {"2026-03-08": "0.25"})
    assert usage_view.frees_up(data, TODAY) == {
        "text": "$0.75 left. The $0.25 spent on Mar 8 frees up on Mar 15 (UTC).",
        "date": "2026-03-15"}
    assert usage_view.frees_up(usage("1.0", {}), TODAY)["text"] == (
        "Nothing spent in the last 7 days: all $1.00 is available.")
    assert "no budget" in usage_view.frees_up(usage("0", {}), TODAY)["text"]
    # Spend outside the window (older than 7 days) does not count.
    assert usage_view.frees_up(usage("1.0", {"2026-03-01": "5"}), TODAY)["date"] is None


def test_chart_rows_split_days_by_model() -> None:
    """The user's chart splits each day's total by the models of the recent requests."""
    data = usage("1.0", {"2026-03-09": "0.3", "2026-03-10": "0.1"})
    requests = [{"date": "2026-03-10", "model": "m1", "cost": 0.1},
                {"date": "2026-03-09", "model": "m1", "cost": 0.1},
                {"date": "2026-03-09", "model": "m2", "cost": 0.2}]
    assert cells(usage_view.chart_rows(data, requests, TODAY)) == [
        ("2026-03-09", "m1", 0.1), ("2026-03-09", "m2", 0.2), ("2026-03-10", "m1", 0.1)]
    spec = usage_view.chart_spec(data, requests, TODAY)
    assert spec["scales"][0]["domain"] == dates.window(TODAY, 7)
    assert usage_view.chart_rows(usage("1.0", {}), [], TODAY) == []  # the page shows an empty state
    assert usage_view.chart_note(usage_view.chart_rows(data, requests, TODAY)) == ""
    corrected = usage("1.0", {"2026-03-09": "0.5"})
    assert usage_view.chart_note(usage_view.chart_rows(corrected, [], TODAY)).startswith("(other) is")


def test_free_model_lists_are_left_out_and_counted() -> None:
    """The playground lists models on every visit; those free calls are not "requests" a
    student cares about: left out of the table (and the count) unless asked for."""
    items = [{"date": TODAY, "path": "/v1/models", "cost": 0},
             {"date": TODAY, "path": "/v1/chat/completions", "model": "m", "cost": 0.1},
             {"date": "2026-01-01", "path": "/v1/chat/completions", "model": "m", "cost": 0.1}]
    assert usage_view.visible_requests(items, False) == (items[1:], 1)
    assert usage_view.visible_requests(items, True) == (items, 0)
    assert usage_view.request_count(items, {"days": 7}, TODAY) == 1


def test_request_row_cells() -> None:
    """A recent request shows time, model and provider, tokens, cost, its source and result."""
    row = usage_view.request_row({
        "ts": "2026-03-10T08:00:01.5Z", "provider": "openai", "model": "gpt-4o-mini",
        "input_tokens": 12, "output_tokens": 30, "cached_tokens": 4, "reasoning_tokens": 0,
        "cost": 2.1e-05, "cost_source": "estimated", "outcome": "aborted", "status": 200,
        "latency_ms": 812.4, "streamed": True})
    assert row == ["Mar 10, 08:00:01", "gpt-4o-mini (openai)", "12 / 30 (4 cached)",
                   "$0.000021", "estimated (no usage reported)", "aborted 200 · streamed",
                   "812 ms"]
    assert usage_view.request_row({"path": "/v1/models", "cost": 0})[1] == "/v1/models"
