"""The dashboard's pure modules under CPython: web/py/dates.py (UTC dates without datetime),
charts.py (exact sums, Vega-Lite specs) and usage_view.py (spend, frees-up, table rows)."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.test_web_py_playground import _load

dates, charts, usage_view = _load("dates"), _load("charts"), _load("usage_view")


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


# -- charts ----------------------------------------------------------------------------------
def test_stacked_rows_total_the_authoritative_day_cost() -> None:
    """Each day's segments add up to the recorded day total: the unexplained rest is
    "(other)", a day lowered by an admin shows only its total, sums are exact."""
    items = [("2026-01-02", "a", charts.pico(0.1)), ("2026-01-02", "a", charts.pico(0.2)),
             ("2026-01-02", "b", charts.pico("0.05")), ("2026-01-03", "a", charts.pico(1)),
             ("2025-12-01", "a", charts.pico(9))]  # outside the window: ignored
    totals = {"2026-01-02": charts.pico("0.4"), "2026-01-03": charts.pico("0.5")}
    rows = charts.stacked_rows(totals, items, ["2026-01-02", "2026-01-03"])
    assert rows == [
        {"date": "2026-01-02", "model": "(other)", "cost": 0.05},
        {"date": "2026-01-02", "model": "a", "cost": 0.3},  # 0.1 + 0.2 exactly, not 0.30000000000000004
        {"date": "2026-01-02", "model": "b", "cost": 0.05},
        {"date": "2026-01-03", "model": "(other)", "cost": 0.5},
    ]
    assert charts.stacked_rows(None, items, ["2026-01-03"]) == [
        {"date": "2026-01-03", "model": "a", "cost": 1.0}]


def test_spend_spec_is_a_vega_lite_bar_chart_over_the_window() -> None:
    """The spec draws stacked bars per day (every window date on the axis, even empty ones)
    coloured by the group, next to totals per group — data only, no URLs to fetch."""
    spec = charts.spend_spec([{"date": "d2", "provider": "openai", "cost": 0.1}], ["d1", "d2"],
                             "provider", "Title", "Provider")
    by_day, by_group = spec["hconcat"]
    assert by_day["encoding"]["x"]["scale"]["domain"] == ["d1", "d2"]
    assert by_day["encoding"]["color"]["field"] == "provider"
    assert by_group["encoding"]["y"]["field"] == "provider"
    assert spec["data"] == {"values": [{"date": "d2", "provider": "openai", "cost": 0.1}]}
    assert "url" not in str(spec) and "$schema" not in spec


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
    assert result["text"] == ("Your budget is used up. It frees up on 2026-03-12 (UTC), when the "
                              "$0.3000 spent up to Mar 5 leaves the 7 days window.")
    # $1.20 spent, but 03-05 holds only $0.10: $1.10 is still over, so 03-06 must leave too.
    data = usage("1.0", {"2026-03-05": "0.1", "2026-03-06": "0.5", "2026-03-09": "0.6"})
    assert usage_view.frees_up(data, TODAY)["date"] == "2026-03-13"


def test_frees_up_sentences() -> None:
    """Not used up: what is left and when the oldest spend returns; nothing spent; no budget."""
    data = usage("1.0", {"2026-03-08": "0.25"})
    assert usage_view.frees_up(data, TODAY) == {
        "text": "$0.7500 left. The $0.2500 spent on Mar 8 frees up on 2026-03-15 (UTC).",
        "date": "2026-03-15"}
    assert usage_view.frees_up(usage("1.0", {}), TODAY)["text"] == (
        "Nothing spent in the last 7 days: all $1.0000 is available.")
    assert "no budget" in usage_view.frees_up(usage("0", {}), TODAY)["text"]
    # Spend outside the window (older than 7 days) does not count.
    assert usage_view.frees_up(usage("1.0", {"2026-03-01": "5"}), TODAY)["date"] is None


def test_summary_keeps_small_amounts() -> None:
    """Spend of a few micro-dollars shows as such, and the meter is exact."""
    summary = usage_view.summary({"cost": 3.6e-06, "limit": 1.0, "days": 7})
    assert summary["spent"] == "$0.0000036" and summary["remaining"] == "$1.0000"
    assert summary["percent"] == 0 and not summary["exhausted"]
    full = usage_view.summary({"cost": 0.02, "limit": 0.01, "days": 7})
    assert full["percent"] == 100 and full["exhausted"] and full["remaining"] == "$0.00"


def test_chart_rows_split_days_by_model() -> None:
    """The user's chart splits each day's total by the models of the recent requests."""
    data = usage("1.0", {"2026-03-09": "0.3", "2026-03-10": "0.1"})
    requests = [{"date": "2026-03-10", "model": "m1", "cost": 0.1},
                {"date": "2026-03-09", "model": "m1", "cost": 0.1},
                {"date": "2026-03-09", "model": "m2", "cost": 0.2}]
    assert usage_view.chart_rows(data, requests, TODAY) == [
        {"date": "2026-03-09", "model": "m1", "cost": 0.1},
        {"date": "2026-03-09", "model": "m2", "cost": 0.2},
        {"date": "2026-03-10", "model": "m1", "cost": 0.1}]
    spec = usage_view.chart_spec(data, requests, TODAY)
    assert spec["hconcat"][0]["encoding"]["x"]["scale"]["domain"] == dates.window(TODAY, 7)


def test_request_row_cells() -> None:
    """A recent request shows time, model and provider, tokens, cost, its source and result."""
    row = usage_view.request_row({
        "ts": "2026-03-10T08:00:01.5Z", "provider": "openai", "model": "gpt-4o-mini",
        "input_tokens": 12, "output_tokens": 30, "cached_tokens": 4, "reasoning_tokens": 0,
        "cost": 2.1e-05, "cost_source": "estimated", "outcome": "aborted", "status": 200,
        "latency_ms": 812.4, "streamed": True})
    assert row == ["2026-03-10 08:00:01 UTC", "gpt-4o-mini (openai)", "12 / 30 (4 cached)",
                   "$0.000021", "estimated (no usage reported)", "aborted 200 · streamed",
                   "812 ms"]
    assert usage_view.request_row({"path": "/v1/models", "cost": 0})[1] == "/v1/models"
