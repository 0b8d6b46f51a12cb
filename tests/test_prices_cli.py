"""`aipipe prices`, run as an operator runs it: the price table with sources and dates, and the
models seen in the ledger that the table cannot price."""

from __future__ import annotations

import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from relay.clock import utc_now
from relay.store import LedgerRow, Store
from tests.conftest import SECRET


def row(n: int, provider: str, model: str) -> LedgerRow:
    ts = utc_now()
    return LedgerRow(
        id=f"id-{n}", ts=ts, date=ts.date(), email="a@example.com", provider=provider,
        path="/v1/chat/completions", model=model, status=200, outcome="ok", input_tokens=10,
        output_tokens=5, cached_tokens=0, reasoning_tokens=0, cost=Decimal("0.001"),
        cost_source="computed", latency_ms=1.0, streamed=False, origin="",
    )


def prices(tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items()
           if not (k.startswith("AIPIPE_") or k.endswith("_API_KEY"))}
    env |= {"AIPIPE_DATA_DIR": str(tmp_path / "data"), "AIPIPE_SECRET": SECRET}
    done = subprocess.run([sys.executable, "-m", "relay", "prices"], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done


@pytest.fixture
def ledger_with(tmp_path: Path):
    def write(rows: list[LedgerRow]) -> None:
        store = Store(tmp_path / "data" / "aipipe.duckdb").open(background=False)
        try:
            for r in rows:
                store.record(r)
        finally:
            store.close()
    return write


def test_prices_lists_the_table_and_flags_unpriced_ledger_models(tmp_path, ledger_with) -> None:
    """Priced and dated names pass; OpenAI, Gemini and Anthropic models with no price are
    flagged with their request counts; OpenRouter models (priced by the provider) are not."""
    ledger_with([
        row(1, "openai", "gpt-4o-mini"),
        row(2, "openai", "gpt-4o-mini-2024-07-18"),
        row(3, "openai", "gpt-legacy-unpriced"),
        row(4, "openai", "gpt-legacy-unpriced"),
        row(5, "gemini", "gemini-9-ultra"),
        row(6, "openrouter", "some/unlisted-model"),
        row(7, "anthropic", "claude-sonnet-4-5-20250929"),
        row(8, "anthropic", "claude-nonesuch-1"),
    ])
    out = prices(tmp_path).stdout
    assert "USD per 1M tokens" in out
    line = next(ln for ln in out.splitlines() if " gpt-4o-mini " in ln)
    assert "input 0.15" in line and "output 0.60" in line
    assert "https://platform.openai.com/docs/pricing, 2025-11-01" in out
    assert "above 200000 prompt tokens" in out  # Gemini 2.5 Pro's long-context tier
    flagged = out.split("Models in the ledger with no price")[1]
    assert "gpt-legacy-unpriced" in flagged and "2 requests" in flagged
    assert "gemini-9-ultra" in flagged and "1 requests" in flagged
    assert "claude-nonesuch-1" in flagged
    assert "gpt-4o-mini" not in flagged and "some/unlisted-model" not in flagged
    assert "claude-sonnet-4-5" not in flagged
    claude = next(ln for ln in out.splitlines() if " claude-opus-5-5 " in ln)
    assert "input 4.00" in claude and "output 20.00" in claude  # `aipipe prices` covers Claude


def test_prices_says_so_when_every_ledger_model_is_priced(tmp_path, ledger_with) -> None:
    """No flag section when the table prices everything the ledger holds."""
    ledger_with([row(1, "openai", "gpt-4o-mini"), row(2, "gemini", "gemini-2.5-flash")])
    out = prices(tmp_path).stdout
    assert "Every model in the ledger has a price." in out
    assert "no price (add them" not in out
