"""The price table: what a model costs per unit, loaded from a TOML data file (no I/O at import)."""

from __future__ import annotations

import datetime as dt
import re
import tomllib
from dataclasses import dataclass, replace
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Any

# Fields that hold a price (USD per 1M tokens unless the name says otherwise).
PRICE_FIELDS = (
    "input",
    "output",
    "cached_input",
    "cache_write",
    "cache_write_1h",
    "audio_input",
    "audio_output",
    "image_input",
    "image_output",
    "per_image",
    "per_minute",
    "per_1m_chars",
    "per_request",
)
_TOKEN_FIELDS = PRICE_FIELDS[:9]  # input … image_output: the fields priced per token
_META_FIELDS = ("source", "date", "note", "long_context_threshold", "long_context", "max_output")
# A model whose largest reply is not in the price data is assumed to write this many tokens
# (reasoning included): large, so a call to it is never bounded below what it can cost.
DEFAULT_MAX_OUTPUT = 128_000

# A name's rest after a priced base counts as a version only if every `-` part is one of these:
# dates (2024-07-18 → 2024, 07, 18), builds (001, 0613, 05-20), and release words. A single digit
# is not one: it is a model's minor version (claude-opus-4-9 is not claude-opus-4, and may cost
# more or less), so such a name stays unpriced until the table has it.
_VERSION_PART = re.compile(r"\d{2,}|latest|preview|exp|experimental|stable|beta|alpha|v\d+")
_MEMO_LIMIT = 4096  # model names come from callers: keep the lookup memo bounded


@dataclass(frozen=True, slots=True)
class Price:
    """What one model costs. Token prices are USD per 1M tokens; `None` means "not priced".

    `long_context` (with `long_context_threshold`) is the complete price that applies to the
    whole call when its prompt has more than `long_context_threshold` tokens (Gemini 2.5 Pro).
    `max_output` is the largest reply the model writes (output and reasoning tokens together),
    the worst case of a call that names no maximum; None when the data does not say.
    """

    input: Decimal | None = None
    output: Decimal | None = None
    cached_input: Decimal | None = None
    cache_write: Decimal | None = None
    cache_write_1h: Decimal | None = None
    audio_input: Decimal | None = None
    audio_output: Decimal | None = None
    image_input: Decimal | None = None
    image_output: Decimal | None = None
    per_image: Decimal | None = None
    per_minute: Decimal | None = None
    per_1m_chars: Decimal | None = None
    per_request: Decimal | None = None
    source: str = ""
    date: str = ""
    note: str = ""
    long_context_threshold: int | None = None
    long_context: Price | None = None
    max_output: int | None = None

    @property
    def output_ceiling(self) -> int:
        """The most output tokens one reply can bill: `max_output`, else a conservative default."""
        return self.max_output or DEFAULT_MAX_OUTPUT

    def for_prompt(self, prompt_tokens: int) -> Price:
        """The price that applies to a call with this many prompt tokens (its tier)."""
        if (
            self.long_context is not None
            and self.long_context_threshold is not None
            and prompt_tokens > self.long_context_threshold
        ):
            return self.long_context
        return self

    @property
    def token_priced(self) -> bool:
        """True when some token price is set, so token counts (or estimates) can be costed."""
        return any(getattr(self, name) is not None for name in _TOKEN_FIELDS)


class PriceTable:
    """Prices by provider and model, with lookup that tolerates dated and versioned names."""

    def __init__(self, prices: dict[str, dict[str, Price]]) -> None:
        self._prices = prices
        self._memo: dict[tuple[str, str], Price | None] = {}

    @classmethod
    def load(cls, path: Path | None = None) -> PriceTable:
        """Load a price file (the package's `data/prices.toml` by default).

        A bad file raises ValueError naming the file, the entry and the field."""
        if path is None:
            text = resources.files("relay.costing").joinpath("data/prices.toml").read_text("utf-8")
            where = "relay/costing/data/prices.toml"
        else:
            try:
                text = path.read_text(encoding="utf-8")
            except OSError as e:
                raise ValueError(f"{path}: cannot read price file: {e}") from e
            where = str(path)
        try:
            data = tomllib.loads(text, parse_float=Decimal)  # exact decimals, never floats
        except tomllib.TOMLDecodeError as e:
            raise ValueError(f"{where}: not valid TOML: {e}") from e
        return cls(_parse_table(data, where))

    def lookup(self, provider: str, model: str) -> Price | None:
        """The price of `model` on `provider`, or None when it is not priced.

        Matching: case-insensitive, `models/` prefix dropped, then the exact name, else the
        longest priced name that is a prefix at a `-` boundary and whose remainder is a date or
        version (`-2024-07-18`, `-preview-05-20`, `-001`, `-latest`). So `gpt-4o-mini-2024-07-18`
        is priced as `gpt-4o-mini`, while an unpriced `gpt-4o-mini` is never priced as `gpt-4o`.
        """
        key = (provider, model)
        try:
            return self._memo[key]
        except KeyError:
            pass
        found = self._find(_provider_key(provider), model)
        if len(self._memo) >= _MEMO_LIMIT:
            self._memo.clear()
        self._memo[key] = found
        return found

    def _find(self, provider: str, model: str) -> Price | None:
        table = self._prices.get(provider)
        if not table:
            return None
        name = model.strip().lower()
        name = name.removeprefix("models/")
        if name in table:
            return table[name]
        parts = name.split("-")
        for cut in range(len(parts) - 1, 0, -1):  # longest base first
            base = "-".join(parts[:cut])
            if base in table and all(_VERSION_PART.fullmatch(p) for p in parts[cut:]):
                return table[base]
        return None

    def entries(self) -> list[tuple[str, str, Price]]:
        """All (provider, model, price) rows, sorted, for an `aipipe prices` listing."""
        return [
            (provider, model, price)
            for provider in sorted(self._prices)
            for model, price in sorted(self._prices[provider].items())
        ]

    def describe(self) -> str:
        """The table as text for `aipipe prices`: one line per model, then its source and date."""
        lines = ["USD per 1M tokens, except per_minute, per_1m_chars, per_image, per_request"]
        for provider, model, price in self.entries():
            ceiling = f", max_output {price.max_output}" if price.max_output else ""
            lines.append(f"{provider:<8} {model:<30} {_describe_prices(price)}{ceiling}")
            tier = price.long_context
            if tier is not None:
                lines.append(
                    f"{'':<8} {'':<30} above {price.long_context_threshold} prompt tokens: "
                    f"{_describe_prices(tier)}"
                )
            detail = f"{price.source}, {price.date}" + (f"; {price.note}" if price.note else "")
            lines.append(f"{'':<8} {'':<30} ({detail})")
        return "\n".join(lines)


def _describe_prices(price: Price) -> str:
    return ", ".join(
        f"{name} {getattr(price, name)}"
        for name in PRICE_FIELDS
        if getattr(price, name) is not None
    )


def _provider_key(provider: str) -> str:
    p = provider.lower()
    return "gemini" if p.startswith("gemini") else p  # the relay's path is /geminiv1beta


def _parse_table(data: dict[str, Any], where: str) -> dict[str, dict[str, Price]]:
    out: dict[str, dict[str, Price]] = {}
    for provider, models in data.items():
        if not isinstance(models, dict):
            raise ValueError(f"{where}: [{provider}] must be a table of models")
        table: dict[str, Price] = {}
        for model, entry in models.items():
            label = f"{where}: [{provider}.{model!r}]"
            if not isinstance(entry, dict):
                raise ValueError(f"{label} must be a table")
            if model != model.lower():
                raise ValueError(f"{label}: model names must be lower case")
            table[model] = _parse_entry(entry, label)
        out[provider.lower()] = table
    return out


def _parse_entry(entry: dict[str, Any], label: str) -> Price:
    for name in entry:
        if name not in PRICE_FIELDS and name not in _META_FIELDS:
            raise ValueError(f"{label}: unknown field {name!r}")
    values: dict[str, Any] = {name: _money(entry[name], label, name) for name in PRICE_FIELDS
                              if name in entry}
    if not values:
        raise ValueError(f"{label}: no price field (one of {', '.join(PRICE_FIELDS)})")
    for name in ("source", "date"):
        if name not in entry:
            raise ValueError(f"{label}: missing field {name!r}")
    source, date, note = entry["source"], entry["date"], entry.get("note", "")
    if not isinstance(source, str) or not source.strip():
        raise ValueError(f"{label}: field 'source' must be a non-empty string")
    if isinstance(date, str):
        try:
            date = dt.date.fromisoformat(date)
        except ValueError as e:
            raise ValueError(f"{label}: field 'date' must be a date (YYYY-MM-DD)") from e
    if not isinstance(date, dt.date) or isinstance(date, dt.datetime):
        raise ValueError(f"{label}: field 'date' must be a date (YYYY-MM-DD)")
    if not isinstance(note, str):
        raise ValueError(f"{label}: field 'note' must be a string")
    max_output = entry.get("max_output")
    if max_output is not None and (
        isinstance(max_output, bool) or not isinstance(max_output, int) or max_output <= 0
    ):
        raise ValueError(f"{label}: field 'max_output' must be a positive integer")
    price = Price(**values, source=source, date=date.isoformat(), note=note, max_output=max_output)
    return _parse_tier(entry, price, label)


def _parse_tier(entry: dict[str, Any], price: Price, label: str) -> Price:
    threshold, tier = entry.get("long_context_threshold"), entry.get("long_context")
    if threshold is None and tier is None:
        return price
    if threshold is None or tier is None:
        raise ValueError(f"{label}: 'long_context_threshold' and 'long_context' go together")
    if isinstance(threshold, bool) or not isinstance(threshold, int) or threshold <= 0:
        raise ValueError(f"{label}: field 'long_context_threshold' must be a positive integer")
    if not isinstance(tier, dict) or not tier:
        raise ValueError(f"{label}: field 'long_context' must be a table of prices")
    for name in tier:
        if name not in PRICE_FIELDS:
            raise ValueError(f"{label}: unknown field 'long_context.{name}'")
    higher = {name: _money(v, label, f"long_context.{name}") for name, v in tier.items()}
    # The tier inherits every price it does not override, so it is a complete Price.
    return replace(price, long_context_threshold=threshold, long_context=replace(price, **higher))


def _money(value: Any, label: str, name: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | Decimal):
        raise ValueError(f"{label}: field {name!r} must be a number, got {value!r}")
    amount = Decimal(value)
    if not amount.is_finite() or amount < 0:
        raise ValueError(f"{label}: field {name!r} must be a finite number >= 0, got {value}")
    return amount

