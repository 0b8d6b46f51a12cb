"""web/py/money.py under CPython: exact micro-dollar parsing and the spend/budget texts."""

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


@pytest.mark.parametrize(("value", "micros"), [
    ("0.1", 100_000), (0.1, 100_000), (1, 1_000_000), ("10", 10_000_000), ("0.0000005", 1),
    ("0.0000004", 0), (".5", 500_000), ("-0.25", -250_000), (0.000123, 123), ("1e-3", None),
])
def test_to_micros_parses_exactly(value: object, micros: int | None) -> None:
    """Amounts the relay sends (strings or JSON numbers) become exact micro-dollars; float
    noise (0.1) does not leak in; exponent notation is refused rather than misread."""
    if micros is None:
        with pytest.raises(ValueError):
            money.to_micros(value)
    else:
        assert money.to_micros(value) == micros


@pytest.mark.parametrize("bad", [None, "", "abc", True, "1.2.3", float("nan"), float("inf"), "--1"])
def test_to_micros_refuses_non_amounts(bad: object) -> None:
    """Missing or garbled amounts raise instead of showing $0."""
    with pytest.raises(ValueError):
        money.to_micros(bad)


@given(st.decimals(min_value=0, max_value=10**6, places=6, allow_nan=False))
def test_to_micros_matches_decimal(amount: Decimal) -> None:
    """For any 6-place amount, parsing its text agrees with Decimal arithmetic."""
    assert money.to_micros(str(amount)) == int(amount * 1_000_000)


def test_format_usd_rounds_half_up() -> None:
    """Display rounding: 4 places by default, half up, negative amounts keep their sign."""
    assert money.format_usd(123) == "$0.0001"
    assert money.format_usd(50) == "$0.0001"
    assert money.format_usd(49) == "$0.0000"
    assert money.format_usd(1_234_567, 2) == "$1.23"
    assert money.format_usd(5_000_000, 0) == "$5"
    assert money.format_usd(-250_000, 2) == "-$0.25"
    assert money.usd(None) == "—"


def test_spend_summary_reports_standing() -> None:
    """The /usage answer becomes spend, limit, remaining, share and a sentence."""
    summary = money.spend_summary({"cost": 0.025, "limit": 0.1, "days": 7, "usage": []})
    assert summary["spent"] == "$0.025" and summary["limit"] == "$0.10"
    assert summary["remaining"] == "$0.075" and summary["percent"] == 25
    assert not summary["exhausted"]
    assert summary["text"] == "$0.025 of $0.10 used in the last 7 days"


def test_spend_summary_at_or_over_the_limit() -> None:
    """At the limit (or with no budget at all) the budget shows as used up, never negative."""
    over = money.spend_summary({"cost": "0.2", "limit": "0.1", "days": 1})
    assert over["exhausted"] and over["remaining"] == "$0.00" and over["percent"] == 100
    assert "used in the last 1 day —" in over["text"]
    none = money.spend_summary({"cost": 0, "limit": 0, "days": 1})
    assert none["exhausted"] and none["percent"] == 100


@pytest.mark.parametrize(("micros", "text", "floored"), [
    (0, "$0.00", "$0.00"), (1_000_000, "$1.00", "$1.00"), (75_000, "$0.075", "$0.075"),
    (1_234, "$0.0012", "$0.0012"), (4, "$0.000004", "$0.000004"), (99, "$0.000099", "$0.000099"),
    (999_982, "$1.00", "$0.9999"), (1_234_567, "$1.2346", "$1.2345"), (-5_000, "-$0.005", "-$0.005"),
])
def test_friendly_usd_has_cents_and_only_the_digits_that_matter(micros: int, text: str,
                                                                floored: str) -> None:
    """No "$1.0000": cents at least, up to 4 decimals, 6 for sub-cent amounts; what is left of
    a budget rounds down, so a tiny spend never shows as the whole budget left."""
    assert money.friendly_usd(micros) == text
    assert money.friendly_usd(micros, floor=True) == floored


def test_budget_text() -> None:
    """The landing page's budget line from config.json's default budget."""
    assert money.budget_text({"limit": "0.10", "days": 7}) == "$0.10 per user over 7 days"
    assert money.budget_text({"limit": "2", "days": 1}) == "$2.00 per user over 1 day"
    assert "no default budget" in money.budget_text(None)
    assert "no free budget" in money.budget_text({"limit": "0", "days": 7})
