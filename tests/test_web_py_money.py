"""web/py/money.py under CPython: the pages' one money module — amounts read exactly into
integer pico-dollars, shown with the digits that matter, and the spend/budget texts."""

from __future__ import annotations

import importlib.util
from decimal import Decimal
from pathlib import Path
from types import ModuleType

import pytest
from hypothesis import given
from hypothesis import strategies as st

WEB_PY = Path(__file__).resolve().parents[1] / "web" / "py"


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"webpy_{name}", WEB_PY / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


money = _load("money")
MICRO = 10**6  # pico-dollars in a micro-dollar: the display tables below read in micro-dollars


@pytest.mark.parametrize(("value", "places", "expected"), [
    ("0.00000015", 12, 150_000), (0.15, 6, 150_000), ("0.6", 6, 600_000), (2, 6, 2_000_000),
    ("1.5e-7", 12, 150_000), ("0.0000000000005", 12, 1), ("0.0000000000004", 12, 0),
    ("-1", 12, None), (None, 12, None), ("abc", 12, None), (True, 12, None), (1.2e-05, 12, 12_000_000),
    ("0.1", 12, 10**11), (0.1, 12, 10**11), (".5", 12, 5 * 10**11), ("1e-3", 12, 10**9),
    ("1.2.3", 12, None), (float("nan"), 12, None), (float("inf"), 12, None), ("", 12, None),
    ("--1", 12, None), (0.075, 6, 75_000),
])
def test_scaled_reads_amounts_and_prices_exactly(value: object, places: int,
                                                 expected: int | None) -> None:
    """Amounts and prices as JSON numbers or text (OpenRouter's per-token strings, exponents)
    become exact integers — float noise (0.1) does not leak in, and a per-1M-token price too
    small for micro-dollars ($0.075) is kept whole; "-1" (OpenRouter's "varies") and junk are
    unknown (None), not zero."""
    assert money.scaled(value, places) == expected


@given(st.decimals(min_value=0, max_value=1000, places=12, allow_nan=False))
def test_scaled_matches_decimal(value: Decimal) -> None:
    """Any decimal text with up to 12 places becomes pico-dollars exactly like Decimal."""
    assert money.scaled(format(value, "f")) == int(value * 10**12)


def test_pico_reads_what_the_relay_sends_and_zero_for_the_rest() -> None:
    """The lenient reader the charts and tables add up: missing or garbled amounts count as 0."""
    assert money.pico("0.25") == 250_000_000_000 and money.pico(1) == money.PICO
    assert [money.pico(v) for v in (None, "", "abc", "-1", True)] == [0, 0, 0, 0, 0]


@pytest.mark.parametrize(("micros", "text", "floored"), [
    (0, "$0.00", "$0.00"), (1_000_000, "$1.00", "$1.00"), (75_000, "$0.075", "$0.075"),
    (1_234, "$0.0012", "$0.0012"), (4, "$0.000004", "$0.000004"), (99, "$0.000099", "$0.000099"),
    (999_982, "$1.00", "$0.9999"), (1_234_567, "$1.2346", "$1.2345"), (-5_000, "-$0.005", "-$0.005"),
])
def test_usd_has_cents_and_only_the_digits_that_matter(micros: int, text: str,
                                                       floored: str) -> None:
    """No "$1.0000": cents at least, up to 4 decimals for ordinary amounts; what is left of a
    budget rounds down, so a tiny spend never shows as the whole budget left."""
    assert money.usd(micros * MICRO) == text
    assert money.usd(micros * MICRO, floor=True) == floored


@pytest.mark.parametrize(("pico", "text"), [
    (0, "$0.00"), (1_500_000, "$0.0000015"), (3_600_000, "$0.0000036"), (123_456_789_000, "$0.1235"),
    (10**12, "$1.00"), (18_450_000, "$0.000018"), (None, "—"), (5, "<$0.0000000001"),
    (12 * 10**9, "$0.012"), (-10**12, "-$1.00"), (150_000_000, "$0.00015"),
])
def test_usd_keeps_small_costs_visible(pico: int | None, text: str) -> None:
    """Tiny costs (one short reply) show two significant digits instead of rounding to $0.0000;
    one too small to show says so rather than "$0.00"."""
    assert money.usd(pico) == text


def test_per_million_shows_prices_per_million_tokens() -> None:
    """Pico-dollars per token read as USD per 1M tokens, at least cents, nothing rounded away."""
    assert [money.per_million(p) for p in (150_000, 600_000, 75_000, 2_000_000, 1, 0, None)] == [
        "$0.15", "$0.60", "$0.075", "$2.00", "$0.000001", "$0.00", "?"]


def test_spend_summary_reports_standing() -> None:
    """The /usage answer becomes spend, limit, remaining, share and a sentence."""
    summary = money.spend_summary({"cost": 0.025, "limit": 0.1, "days": 7, "usage": []})
    assert summary["spent"] == "$0.025" and summary["limit"] == "$0.10"
    assert summary["remaining"] == "$0.075" and summary["percent"] == 25
    assert not summary["exhausted"] and summary["some"]
    assert summary["text"] == "$0.025 of $0.10 used in the last 7 days"


def test_spend_summary_keeps_small_amounts_and_never_overstates_what_is_left() -> None:
    """A first tiny call shows what it cost (not $0.00), and the budget left rounds down."""
    summary = money.spend_summary({"cost": 3.6e-06, "limit": 1.0, "days": 7})
    assert summary["spent"] == "$0.0000036" and summary["remaining"] == "$0.9999"
    assert summary["limit"] == "$1.00" and summary["some"]
    assert summary["percent"] == 0 and not summary["exhausted"]


def test_spend_summary_at_or_over_the_limit() -> None:
    """At the limit (or with no budget at all) the budget shows as used up, never negative."""
    over = money.spend_summary({"cost": "0.2", "limit": "0.1", "days": 1})
    assert over["exhausted"] and over["remaining"] == "$0.00" and over["percent"] == 100
    assert "used in the last 1 day —" in over["text"]
    none = money.spend_summary({"cost": 0, "limit": 0, "days": 1})
    assert none["exhausted"] and none["percent"] == 100 and not none["some"]


def test_budget_text() -> None:
    """The landing page's budget line from config.json's default budget."""
    assert money.budget_text({"limit": "0.10", "days": 7}) == "$0.10 per user over 7 days"
    assert money.budget_text({"limit": "2", "days": 1}) == "$2.00 per user over 1 day"
    assert money.budget_text({"limit": "0.125", "days": 7}) == "$0.125 per user over 7 days"
    assert "no default budget" in money.budget_text(None)
    assert "no free budget" in money.budget_text({"limit": "0", "days": 7})
    assert money.budget_text({"limit": "lots", "days": 7}) == "a budget set by the operator"
