"""The price table: the shipped data file, model-name normalisation, and bad-file errors."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from relay.costing.pricing import PRICE_FIELDS, Price, PriceTable


@pytest.fixture(scope="module")
def table() -> PriceTable:
    return PriceTable.load()


REQUIRED = {
    "openai": [
        "gpt-5", "gpt-5-mini", "gpt-5-nano", "gpt-4.1", "gpt-4.1-mini", "gpt-4.1-nano", "gpt-4o",
        "gpt-4o-mini", "o3", "o4-mini", "o3-mini", "o1", "gpt-4o-mini-tts", "tts-1", "tts-1-hd",
        "whisper-1", "gpt-4o-transcribe", "gpt-4o-mini-transcribe", "gpt-image-1", "dall-e-3",
        "text-embedding-3-small", "text-embedding-3-large", "text-embedding-ada-002",
        "gpt-4o-audio-preview", "gpt-realtime", "aipipe-demo",
    ],
    "gemini": [
        "gemini-2.5-pro", "gemini-2.5-flash", "gemini-2.5-flash-lite", "gemini-2.0-flash",
        "gemini-2.0-flash-lite", "gemini-embedding-001", "text-embedding-004",
    ],
}


@pytest.mark.parametrize(
    ("provider", "model"), [(p, m) for p, models in REQUIRED.items() for m in models]
)
def test_shipped_table_prices_every_mainstream_model(
    table: PriceTable, provider: str, model: str
) -> None:
    """Every model the relay promises to cost has an exact entry with a source and a date."""
    price = table.lookup(provider, model)
    assert price is not None, f"{provider}/{model} has no price"
    assert price.source and price.date
    assert any(getattr(price, f) is not None for f in PRICE_FIELDS)


def test_shipped_entries_cite_the_provider_pricing_pages(table: PriceTable) -> None:
    """Each entry names its provider's pricing page (the demo model excepted)."""
    pages = {
        "openai": "https://platform.openai.com/docs/pricing",
        "gemini": "https://ai.google.dev/gemini-api/docs/pricing",
        "anthropic": "https://docs.claude.com/en/docs/about-claude/pricing",
    }
    for provider, model, price in table.entries():
        if model == "aipipe-demo":
            assert price.source == "built-in demo"
            continue
        assert price.source == pages[provider], (provider, model)
        assert len(price.date) == 10 and price.date.startswith("20")


def test_known_prices_are_exact_decimals(table: PriceTable) -> None:
    """Prices load as exact Decimals (never floats), as written in the file."""
    mini = table.lookup("openai", "gpt-4o-mini")
    assert mini is not None
    assert mini.input == Decimal("0.15") and mini.output == Decimal("0.60")
    assert mini.cached_input == Decimal("0.075")
    demo = table.lookup("openai", "aipipe-demo")
    assert demo is not None and (demo.input, demo.output) == (Decimal("1.00"), Decimal("2.00"))
    whisper = table.lookup("openai", "whisper-1")
    assert whisper is not None and whisper.per_minute == Decimal("0.006")
    assert whisper.input is None and not whisper.token_priced
    tts = table.lookup("openai", "tts-1")
    assert tts is not None and tts.per_1m_chars == Decimal("15.00")


@pytest.mark.parametrize(
    ("provider", "name", "priced_as"),
    [
        ("openai", "gpt-4o-mini-2024-07-18", "gpt-4o-mini"),
        ("openai", "gpt-4o-2024-08-06", "gpt-4o"),
        ("openai", "GPT-4o", "gpt-4o"),
        ("openai", "o3-mini-2025-01-31", "o3-mini"),
        ("openai", "gpt-5-2025-08-07", "gpt-5"),
        ("openai", "gpt-4.1-nano-2025-04-14", "gpt-4.1-nano"),
        ("openai", "gpt-4o-audio-preview-2024-12-17", "gpt-4o-audio-preview"),
        ("openai", "gpt-4o-mini-tts-2025-03-20", "gpt-4o-mini-tts"),
        ("openai", "chatgpt-4o-latest", "chatgpt-4o"),
        ("openai", "gpt-5-chat-latest", "gpt-5-chat"),
        ("openai", "gpt-4-0613", "gpt-4"),
        ("gemini", "models/gemini-2.5-flash", "gemini-2.5-flash"),
        ("gemini", "gemini-2.5-flash-preview-05-20", "gemini-2.5-flash"),
        ("gemini", "gemini-2.5-flash-lite-preview-06-17", "gemini-2.5-flash-lite"),
        ("gemini", "gemini-2.0-flash-001", "gemini-2.0-flash"),
        ("gemini", "gemini-2.0-flash-lite-001", "gemini-2.0-flash-lite"),
        ("gemini", "gemini-2.5-pro-exp-03-25", "gemini-2.5-pro"),
        ("gemini", "Models/Gemini-2.5-Pro", "gemini-2.5-pro"),
        ("geminiv1beta", "gemini-2.5-flash", "gemini-2.5-flash"),  # the relay's provider name
    ],
)
def test_dated_and_versioned_names_price_as_their_base(
    table: PriceTable, provider: str, name: str, priced_as: str
) -> None:
    """Dated snapshots, `-latest`, `-001`, `models/` and case all find the base model's price."""
    assert table.lookup(provider, name) == table.lookup(provider.removesuffix("v1beta"), priced_as)
    assert table.lookup(provider, name) is not None


@pytest.mark.parametrize(
    ("provider", "name"),
    [
        ("openai", "gpt-4o-mini-search"),  # a different product, not a version of gpt-4o-mini
        ("openai", "gpt-4.5-preview"),
        ("openai", "o3-deep-research"),
        ("openai", "gpt-4o-realtime"),
        ("openai", "ft:gpt-4o-mini-2024-07-18:org::abc123"),  # fine-tunes cost more
        ("gemini", "gemini-2.5-flash-native-audio-dialog"),
        ("gemini", "gemini-2.5-flash-live"),
        ("openrouter", "openai/gpt-4o"),  # OpenRouter is priced by its own list, not the table
        ("openai", ""),
    ],
)
def test_other_products_are_never_priced_as_a_prefix(
    table: PriceTable, provider: str, name: str
) -> None:
    """A name whose rest is not a date/version gets no price rather than a wrong one."""
    assert table.lookup(provider, name) is None


def test_mini_is_never_priced_as_its_bigger_sibling(tmp_path: Path) -> None:
    """With only gpt-4o priced, gpt-4o-mini stays unpriced (prefix match needs a version rest)."""
    path = tmp_path / "p.toml"
    path.write_text(
        '[openai."gpt-4o"]\ninput = 2.5\noutput = 10\nsource = "s"\ndate = 2025-01-01\n'
    )
    table = PriceTable.load(path)
    assert table.lookup("openai", "gpt-4o-mini") is None
    assert table.lookup("openai", "gpt-4o-mini-2024-07-18") is None
    assert table.lookup("openai", "gpt-4o-2024-05-13") is not None


def test_gemini_pro_has_a_complete_long_context_tier(table: PriceTable) -> None:
    """Above 200k prompt tokens Gemini 2.5 Pro bills at the higher tier; at 200k it does not."""
    pro = table.lookup("gemini", "gemini-2.5-pro")
    assert pro is not None and pro.long_context_threshold == 200_000
    assert pro.for_prompt(200_000) is pro
    high = pro.for_prompt(200_001)
    assert (high.input, high.output, high.cached_input) == (
        Decimal("2.50"), Decimal("15.00"), Decimal("0.25"),
    )
    assert high.source == pro.source and high.long_context is None


def test_entries_and_describe_list_every_model(table: PriceTable) -> None:
    """The `aipipe prices` listing shows every model with its source, date and tier."""
    rows = table.entries()
    assert rows == sorted(rows, key=lambda r: (r[0], r[1]))
    text = table.describe()
    for _provider, model, price in rows:
        assert model in text and price.date in text
    assert "above 200000 prompt tokens" in text


def _bad(tmp_path: Path, body: str) -> str:
    path = tmp_path / "prices.toml"
    path.write_text(body)
    with pytest.raises(ValueError) as info:
        PriceTable.load(path)
    return str(info.value)


OK_META = 'source = "https://example.test/pricing"\ndate = 2025-01-01\n'


@pytest.mark.parametrize(
    ("body", "names"),
    [
        ('[openai."m"]\ninput = "cheap"\n' + OK_META, ["'m'", "input", "number"]),
        ('[openai."m"]\ninput = -1\n' + OK_META, ["'m'", "input", ">= 0"]),
        ('[openai."m"]\ninput = true\n' + OK_META, ["'m'", "input"]),
        ('[openai."m"]\nimput = 1\n' + OK_META, ["'m'", "unknown field 'imput'"]),
        ('[openai."m"]\ninput = 1\ndate = 2025-01-01\n', ["'m'", "missing field 'source'"]),
        ('[openai."m"]\ninput = 1\nsource = "s"\n', ["'m'", "missing field 'date'"]),
        ('[openai."m"]\ninput = 1\nsource = "s"\ndate = "soon"\n', ["'m'", "date"]),
        ('[openai."m"]\n' + OK_META, ["'m'", "no price field"]),
        ('[openai."M"]\ninput = 1\n' + OK_META, ["'M'", "lower case"]),
        (
            '[gemini."g"]\ninput = 1\nlong_context_threshold = 10\n' + OK_META,
            ["'g'", "go together"],
        ),
        (
            '[gemini."g"]\ninput = 1\nlong_context_threshold = 0\nlong_context = {input = 2}\n'
            + OK_META,
            ["'g'", "long_context_threshold", "positive"],
        ),
        (
            '[gemini."g"]\ninput = 1\nlong_context_threshold = 9\nlong_context = {inptu = 2}\n'
            + OK_META,
            ["'g'", "long_context.inptu"],
        ),
        ("[openai\n", ["not valid TOML"]),
        ('openai = 3\n', ["[openai]", "table"]),
    ],
)
def test_bad_price_file_names_the_entry_and_field(
    tmp_path: Path, body: str, names: list[str]
) -> None:
    """A broken price file fails loudly, naming the file, the entry and the field at fault."""
    message = _bad(tmp_path, body)
    assert "prices.toml" in message
    for name in names:
        assert name in message, message


def test_missing_price_file_is_a_value_error(tmp_path: Path) -> None:
    """A price path that does not exist fails with a ValueError naming it."""
    with pytest.raises(ValueError, match=r"nope\.toml"):
        PriceTable.load(tmp_path / "nope.toml")


def test_price_is_a_frozen_value() -> None:
    """Prices are immutable values, so a shared table cannot be changed by a request."""
    price = Price(input=Decimal(1), source="s", date="2025-01-01")
    with pytest.raises(AttributeError):
        price.input = Decimal(2)  # type: ignore[misc]
    assert price.token_priced and not Price(per_image=Decimal(1)).token_priced
