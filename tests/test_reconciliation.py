"""Reconciliation: after many mixed requests — every provider and endpoint, plain and streamed,
finished, abandoned, broken, timed out, failed — the relay's ledger adds up to what the fake
provider billed.

How the books are compared (the fake can only bill calls it finished):
- `exact` calls (the provider reported usage or cost): one ledger row each, whose cost equals
  the fake's bill x the price table to the last digit; their sum is equal, not close.
- `estimated` calls that finished without telling usage (nousage, Gemini embeddings, a
  whisper-1 text answer): the fake still knows the truth (its usage model: a token per word, a
  token per reply chunk; seconds of audio). Measured on this mix: 0.91x..1.42x the truth per
  row, -6% on their sum; asserted (and stated in docs/costing.md): 0.8x..1.6x per row, +/-30% on the
  sum. The estimator counts ~4 characters a token; against a real tokenizer that is -5%..+30%
  on Latin text (relay/cost.py), but the fake counts whole words (~5.5 characters with the
  space in this prose), so text estimates run ~40% high here.
- `interrupted` calls (client gone, provider broke or went silent) were never finished, so no
  provider can say exactly what they cost; each is recorded non-zero and at most twice the cost
  of the whole call had it finished (the provider bills between the prompt and the whole call).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest

from relay.app import create_app
from relay.auth.tokens import issue_token
from testkit.fakes.openai_api import OPENAI_ROUTES, transcriptions
from testkit.fakes.protocol import words
from testkit.fakes.server import serve_asgi
from testkit.fakes.upstream import create_fake_upstream
from tests.conftest import make_settings
from tests.test_costing_endpoints import billed_cost, ledger_rows, price_of, token_cost, wav

EMAIL = "rich@example.com"
ESTIMATE_LOW, ESTIMATE_HIGH = Decimal("0.8"), Decimal("1.6")  # per estimated row, x truth
ESTIMATE_SUM_ERROR = Decimal("0.3")  # the estimated rows' sum, relative to the truth


def chat(model: str, text: str, **extra: Any) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": text}], **extra}


def gem(text: str) -> dict[str, Any]:
    return {"contents": [{"role": "user", "parts": [{"text": text}]}]}


def chat_truth(model: str, text: str, chunks: int = 5, provider: str = "openai") -> Decimal:
    """What the fake's usage model bills a finished chat call (a token a word, a token a chunk,
    reasoning models think two tokens a chunk)."""
    reasoning = 2 * chunks if model.startswith(("o", "gpt-5")) else 0
    return token_cost(price_of(provider, model), inp=max(1, words(text)), out=chunks + reasoning)


# (label, kind, method, path, request kwargs, x-fake, truth of an estimated/interrupted call)
C = "/openai/v1/chat/completions"
G = "/geminiv1beta/models"
PROSE = "please explain why the sky looks blue on a clear summer afternoon"
MIX: list[tuple[str, str, str, dict[str, Any], str, Decimal | None]] = [
    ("exact", "POST", C, {"json": chat("gpt-4o-mini", PROSE)}, "", None),
    ("exact", "POST", C, {"json": chat("gpt-4.1", PROSE)}, "cached", None),
    ("exact", "POST", C, {"json": chat("o4-mini", PROSE)}, "", None),
    ("exact", "POST", C, {"json": chat("gpt-4o-mini-2024-07-18", PROSE, stream=True)}, "", None),
    ("exact", "POST", C, {"json": chat("gpt-5-nano", PROSE, stream=True)}, "cached", None),
    ("exact", "POST", "/openai/v1/responses", {"json": {"model": "gpt-5-mini", "input": PROSE}},
     "", None),
    ("exact", "POST", "/openai/v1/responses",
     {"json": {"model": "gpt-4.1-mini", "input": PROSE, "stream": True}}, "", None),
    ("exact", "POST", "/openai/v1/embeddings",
     {"json": {"model": "text-embedding-3-small", "input": PROSE}}, "", None),
    ("exact", "POST", "/openai/v1/embeddings",
     {"json": {"model": "text-embedding-3-large", "input": [PROSE, "two", "three four"]}}, "",
     None),
    ("exact", "POST", "/openai/v1/images/generations",
     {"json": {"model": "gpt-image-1", "prompt": PROSE, "quality": "medium"}}, "", None),
    ("exact", "POST", "/openai/v1/images/generations",
     {"json": {"model": "dall-e-3", "prompt": PROSE, "n": 2}}, "", None),
    ("exact", "POST", "/openai/v1/audio/speech",
     {"json": {"model": "tts-1", "input": PROSE, "voice": "alloy"}}, "", None),
    ("exact", "POST", "/openai/v1/audio/speech",
     {"json": {"model": "tts-1-hd", "input": PROSE * 3, "voice": "alloy"}}, "", None),
    ("exact", "POST", "/openai/v1/audio/transcriptions",
     {"files": {"file": ("a.wav", wav(4), "audio/wav")}, "data": {"model": "whisper-1"}}, "",
     None),
    ("exact", "POST", "/openai/v1/audio/translations",
     {"files": {"file": ("a.wav", wav(7), "audio/wav")},
      "data": {"model": "gpt-4o-transcribe"}}, "", None),
    ("exact", "POST", f"{G}/gemini-2.5-flash:generateContent", {"json": gem(PROSE)}, "", None),
    ("exact", "POST", f"{G}/gemini-2.0-flash:generateContent", {"json": gem(PROSE)}, "cached",
     None),
    ("exact", "POST", f"{G}/gemini-2.5-pro:streamGenerateContent?alt=sse", {"json": gem(PROSE)},
     "", None),
    ("exact", "POST", f"{G}/gemini-2.5-flash-lite:streamGenerateContent", {"json": gem(PROSE)},
     "", None),
    ("free", "POST", f"{G}/gemini-2.5-flash:countTokens", {"json": gem(PROSE)}, "", None),
    ("exact", "POST", "/openrouter/v1/chat/completions",
     {"json": chat("anthropic/claude-3.5-haiku", PROSE)}, "", None),
    ("exact", "POST", "/openrouter/v1/chat/completions",
     {"json": chat("openai/gpt-4o-mini", PROSE, stream=True)}, "", None),
    ("exact", "POST", "/openrouter/v1/chat/completions",
     {"json": chat("test/nocost-model", PROSE, stream=True)}, "", None),
    ("exact", "POST", "/openrouter/v1/chat/completions",
     {"json": chat("test/nocost-model", PROSE)}, "", None),
    # Finished, but the provider told no usage: estimated against the fake's known truth.
    ("estimated", "POST", C, {"json": chat("gpt-4o-mini", PROSE)}, "nousage",
     chat_truth("gpt-4o-mini", PROSE)),
    ("estimated", "POST", C, {"json": chat("gpt-4.1", PROSE, stream=True)}, "nousage",
     chat_truth("gpt-4.1", PROSE)),
    ("estimated", "POST", f"{G}/gemini-embedding-001:embedContent",
     {"json": {"content": {"parts": [{"text": PROSE}]}}}, "",
     token_cost(price_of("gemini", "gemini-embedding-001"), inp=words(PROSE), out=0)),
    ("estimated", "POST", f"{G}/gemini-embedding-001:batchEmbedContents",
     {"json": {"requests": [{"model": "models/gemini-embedding-001",
                             "content": {"parts": [{"text": t}]}} for t in (PROSE, PROSE)]}},
     "", token_cost(price_of("gemini", "gemini-embedding-001"), inp=2 * words(PROSE), out=0)),
    ("estimated", "POST", "/openai/v1/audio/transcriptions",
     {"files": {"file": ("a.wav", wav(10), "audio/wav")},
      "data": {"model": "whisper-1", "response_format": "text"}}, "",
     Decimal(11) * Decimal("0.006") / 60),  # the fake bills whole seconds: ceil(10.0014)
    # Interrupted: truth is the whole call's cost had it finished.
    ("interrupted", "POST", C, {"json": chat("gpt-4o-mini", PROSE, stream=True)}, "break",
     chat_truth("gpt-4o-mini", PROSE)),
    ("interrupted", "POST", "/openai/v1/responses",
     {"json": {"model": "gpt-4o", "input": PROSE, "stream": True}}, "break",
     chat_truth("gpt-4o", PROSE)),
    ("interrupted", "POST", "/openrouter/v1/chat/completions",
     {"json": chat("openai/gpt-4.1-nano", PROSE, stream=True)}, "break",
     Decimal("0.0000001") * words(PROSE) + Decimal("0.0000004") * 5),
    ("interrupted", "POST", C, {"json": chat("gpt-4o-mini", PROSE)}, "break",
     chat_truth("gpt-4o-mini", PROSE)),
    ("interrupted", "POST", C, {"json": chat("gpt-4o-mini", PROSE)}, "silent",
     chat_truth("gpt-4o-mini", PROSE)),
    ("abort", "POST", C, {"json": chat("gpt-4.1-mini", PROSE, stream=True)}, "slow",
     chat_truth("gpt-4.1-mini", PROSE, chunks=20)),
    ("abort", "POST", f"{G}/gemini-2.0-flash:streamGenerateContent?alt=sse",
     {"json": gem(PROSE)}, "slow",
     token_cost(price_of("gemini", "gemini-2.0-flash"), inp=words(PROSE), out=20)),
    # Failed at the provider: nobody pays.
    ("failed", "POST", C, {"json": chat("gpt-4o-mini", PROSE)}, "error500", None),
    ("failed", "POST", f"{G}/gemini-2.5-flash:generateContent", {"json": gem(PROSE)}, "error429",
     None),
]


@pytest.fixture
def live(tmp_path, monkeypatch) -> Iterator[tuple[str, Any, Any, str]]:
    monkeypatch.setitem(OPENAI_ROUTES, ("POST", "v1/audio/translations"), transcriptions)
    upstream = create_fake_upstream()
    with serve_asgi(upstream) as up:
        settings = make_settings(tmp_path, base=up, stream_idle_timeout=0.5)
        app = create_app(settings)
        with serve_asgi(app) as relay:
            yield relay, app, upstream, issue_token(settings, EMAIL)


def send(relay: str, tok: str, kind: str, method: str, path: str, kw: dict[str, Any],
         fake: str) -> None:
    headers = {"authorization": f"Bearer {tok}", "x-fake": fake}
    if kind == "abort":
        headers |= {"x-fake-delay": "150", "x-fake-chunks": "20"}
        with httpx.stream(method, relay + path, headers=headers, timeout=30, **kw) as r:
            next(r.iter_raw())  # read the first bytes, then hang up
        return
    httpx.request(method, relay + path, headers=headers, timeout=30, **kw)


def wait_rows(store: Any, count: int) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 15
    while True:
        rows = ledger_rows(store)  # checks: no priced row at $0
        if len(rows) >= count or time.monotonic() > deadline:
            return rows
        time.sleep(0.05)


def test_ledger_reconciles_with_what_the_provider_billed(live) -> None:
    """Mixed traffic on every provider: exact rows match the fake's bill to the digit, estimated
    rows stay within the stated bound of the truth, interrupted ones are non-zero and bounded,
    failures cost nothing, and the ledger's total is the sum of those parts."""
    relay, app, upstream, tok = live
    billed_exact, est_truth, est_ledger = Decimal(0), Decimal(0), Decimal(0)
    exact_ledger, interrupted_ledger = Decimal(0), Decimal(0)
    ratios: list[Decimal] = []
    for i, (kind, method, path, kw, fake, truth) in enumerate(MIX):
        bills_before = len(upstream.state.billed)
        send(relay, tok, kind, method, path, kw, fake)
        row = wait_rows(app.state.store, i + 1)[i]
        label = f"{kind} {path} {fake}: {row}"
        assert row["path"] in path, label
        bills = upstream.state.billed[bills_before:]
        if kind == "exact":
            [bill] = bills
            expected = billed_cost(bill)
            assert row["cost"] == expected and row["cost_source"] in ("computed", "reported"), (
                label, expected)
            billed_exact += expected
            exact_ledger += row["cost"]
        elif kind in ("free", "failed"):
            assert row["cost"] == 0, label
        elif kind == "estimated":
            assert truth is not None and row["cost_source"] == "estimated", label
            ratio = row["cost"] / truth
            ratios.append(ratio)
            assert ESTIMATE_LOW <= ratio <= ESTIMATE_HIGH, (label, ratio)
            est_truth += truth
            est_ledger += row["cost"]
        else:  # interrupted or aborted: nothing finished, nothing exact to compare
            assert truth is not None and bills == [], label
            assert 0 < row["cost"] <= 2 * truth, (label, truth)
            interrupted_ledger += row["cost"]
    rows = ledger_rows(app.state.store)
    assert len(rows) == len(MIX)
    total = sum((r["cost"] for r in rows), Decimal(0))
    assert exact_ledger == billed_exact  # to the last digit
    assert abs(est_ledger - est_truth) <= ESTIMATE_SUM_ERROR * est_truth, (est_ledger, est_truth)
    assert total == exact_ledger + est_ledger + interrupted_ledger
    # What the budget reads agrees with the ledger.
    assert app.state.store.spend(EMAIL, 30) == total
    print(f"\nexact {exact_ledger} == billed {billed_exact}; estimated {est_ledger} vs truth "
          f"{est_truth} (ratios {[f'{r:.2f}' for r in ratios]}); interrupted "
          f"{interrupted_ledger}; total {total}")
