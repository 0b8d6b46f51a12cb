"""Every priced endpoint through the relay, with the exact ledger cost.

The expected cost is worked out here from what the fake upstream says it billed
(`upstream.state.billed`) times the price table's numbers, with this file's own arithmetic, never
the relay's cost code: if the relay reads usage wrongly, prices the wrong model, or drops a token
kind, the two disagree. The helpers here (`ledger`, `billed_cost`, ...) are shared by the other
costing test files.
"""

from __future__ import annotations

import json
import math
import struct
from decimal import Decimal
from typing import Any

import httpx
import pytest

from relay.costing.pricing import Price, PriceTable
from testkit.fakes.protocol import DEFAULT_PRICE, OPENROUTER_PRICES
from tests.conftest import auth

M = Decimal(1_000_000)
PRICES = PriceTable.load()
RICH = "rich@example.com"  # $10 over 30 days: room for the long-context call
LEDGER_KEYS = (
    "provider", "path", "model", "status", "outcome", "input_tokens", "output_tokens",
    "cached_tokens", "reasoning_tokens", "cost", "cost_source", "streamed",
)


# -- shared helpers ---------------------------------------------------------------------------
def ledger_rows(store: Any) -> list[dict[str, Any]]:
    """Every ledger row, oldest first, after checking the costing invariant on all of them:
    a request to a priced endpoint is never recorded at $0 for want of a price or usage."""
    rows = store.query(f"SELECT {', '.join(LEDGER_KEYS)} FROM requests ORDER BY ts")
    out = [dict(zip(LEDGER_KEYS, r, strict=True)) for r in rows]
    for row in out:
        assert_not_free_by_accident(row)
    return out


def ledger(client: Any) -> list[dict[str, Any]]:
    return ledger_rows(client.app.state.store)


def assert_not_free_by_accident(row: dict[str, Any]) -> None:
    """$0 is allowed only for free endpoints, provider errors, calls that never reached the
    provider, a cost the provider itself reported as 0, or a model the table prices at 0."""
    if row["cost"] != 0:
        return
    if row["cost_source"] == "free" or row["outcome"] == "error" or row["cost_source"] == "reported":
        return
    price = PRICES.lookup(row["provider"], row["model"])
    zero_priced = price is not None and all(
        getattr(price, f) in (None, Decimal(0)) for f in ("input", "output", "per_minute",
                                                          "per_1m_chars", "per_image")
    )
    assert zero_priced, f"priced call recorded at $0: {row}"


def price_of(provider: str, model: str) -> Price:
    price = PRICES.lookup(provider, model)
    assert price is not None, f"{provider}/{model} is not in the price table"
    return price


def token_cost(price: Price, *, inp: int, out: int, cached: int = 0, audio_in: int = 0,
               image_out: int = 0) -> Decimal:
    """USD for token counts at the table's per-1M prices (tier chosen by the prompt size)."""
    p = price.long_context if (
        price.long_context is not None and inp > (price.long_context_threshold or 0)
    ) else price
    rate_in = p.input or Decimal(0)
    total = (inp - cached - audio_in) * rate_in
    total += cached * (p.cached_input if p.cached_input is not None else rate_in)
    total += audio_in * (p.audio_input if p.audio_input is not None else rate_in)
    total += (out - image_out) * (p.output or Decimal(0))
    total += image_out * (p.image_output if p.image_output is not None else p.output or 0)
    return total / M


def billed_cost(bill: dict[str, Any]) -> Decimal | None:
    """What one call the fake billed costs, from the fake's own record and the price table.

    None when the fake billed no usage (the provider reports none: Gemini embeddings)."""
    provider, model, u = bill["provider"], bill["model"], bill["usage"]
    if provider == "openrouter":
        if bill["cost"] is not None:
            return bill["cost"]
        p, c = OPENROUTER_PRICES.get(model, DEFAULT_PRICE)
        return u["prompt_tokens"] * Decimal(p) + u["completion_tokens"] * Decimal(c)
    price = price_of(provider, model)
    if not u:
        return None
    if "usageMetadata" in u or "promptTokenCount" in u:  # Gemini
        return token_cost(
            price, inp=u["promptTokenCount"],
            out=u["candidatesTokenCount"] + u.get("thoughtsTokenCount", 0),
            cached=u.get("cachedContentTokenCount", 0),
        )
    if u.get("type") == "duration":
        return Decimal(u["seconds"]) * price.per_minute / 60  # type: ignore[operator]
    if "input_characters" in u:
        return u["input_characters"] * price.per_1m_chars / M  # type: ignore[operator]
    if "images" in u:
        return u["images"] * price.per_image  # type: ignore[operator]
    if "prompt_tokens" in u:
        details = u.get("prompt_tokens_details") or {}
        return token_cost(price, inp=u["prompt_tokens"], out=u.get("completion_tokens", 0),
                          cached=details.get("cached_tokens", 0))
    details = u.get("input_tokens_details") or u.get("input_token_details") or {}
    image_out = u["output_tokens"] if "image_tokens" in details else 0  # GPT Image output
    return token_cost(price, inp=u["input_tokens"], out=u["output_tokens"],
                      cached=details.get("cached_tokens", 0),
                      audio_in=details.get("audio_tokens", 0), image_out=image_out)


def last_bill(upstream: Any) -> dict[str, Any]:
    assert upstream.state.billed, "the fake billed nothing"
    return upstream.state.billed[-1]


def wav(seconds: float) -> bytes:
    """A real 16 kHz 16-bit mono WAV file of silence."""
    data = b"\x00\x00" * int(16000 * seconds)
    header = b"RIFF" + struct.pack("<I", 36 + len(data)) + b"WAVEfmt " + struct.pack(
        "<IHHIIHH", 16, 1, 1, 16000, 32000, 2, 16) + b"data" + struct.pack("<I", len(data))
    return header + data


def sse_events(text: str) -> list[dict[str, Any]]:
    return [json.loads(line[6:]) for line in text.splitlines()
            if line.startswith("data: {")]


def check(client: Any, upstream: Any, r: httpx.Response, *, source: str = "computed",
          streamed: bool = False) -> dict[str, Any]:
    """The last ledger row costs exactly what the fake billed. A JSON answer tells its cost in
    headers (the docs' promise: known at header time); any other answer (a stream, audio,
    text) tells only the budget left, since its cost is known only at its end."""
    assert r.status_code == 200, r.text
    row = ledger(client)[-1]
    expected = billed_cost(last_bill(upstream))
    assert expected is not None and expected > 0
    assert row["cost"] == expected, (row, expected)
    assert row["cost_source"] == source
    assert row["streamed"] is streamed
    assert "x-aipipe-remaining" in r.headers
    if "json" in r.headers["content-type"] and not streamed:
        assert Decimal(r.headers["x-aipipe-cost"]) == expected.quantize(Decimal("1e-8"))
        assert r.headers["x-aipipe-cost-source"] == source
    else:
        assert "x-aipipe-cost" not in r.headers and "x-aipipe-cost-source" not in r.headers
    return row


def chat(model: str, text: str = "please say hello to me", **extra: Any) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": text}], **extra}


# -- OpenAI -----------------------------------------------------------------------------------
def test_chat_completion_cost_is_usage_times_price(client, token, upstream) -> None:
    """A plain chat completion is recorded at prompt x input + completion x output."""
    r = client.post("/openai/v1/chat/completions", json=chat("gpt-4o-mini"), headers=auth(token()))
    row = check(client, upstream, r)
    assert row["input_tokens"] == 5 and row["output_tokens"] == 5


def test_streamed_chat_cost_comes_from_the_usage_event(client, token, upstream) -> None:
    """A streamed chat asks for usage in the stream and records exactly that usage."""
    r = client.post("/openai/v1/chat/completions", json=chat("gpt-4.1-nano", stream=True),
                    headers=auth(token()))
    check(client, upstream, r, streamed=True)
    sent = json.loads(upstream.state.received[-1]["body"])
    assert sent["stream_options"] == {"include_usage": True}


def test_dated_model_name_is_priced_as_its_base(client, token, upstream) -> None:
    """gpt-4o-mini-2024-07-18 is billed at gpt-4o-mini's price, not refused or free."""
    r = client.post("/openai/v1/chat/completions", json=chat("gpt-4o-mini-2024-07-18"),
                    headers=auth(token()))
    row = check(client, upstream, r)
    assert row["model"] == "gpt-4o-mini-2024-07-18"


def test_cached_input_is_billed_at_the_cached_price(client, token, upstream) -> None:
    """Half the prompt read from cache costs the cached price, and the row counts it."""
    body = chat("gpt-4o-mini", "one two three four five six seven eight nine ten")
    r = client.post("/openai/v1/chat/completions", json=body,
                    headers={**auth(token()), "x-fake": "cached"})
    row = check(client, upstream, r)
    assert row["cached_tokens"] == 5
    uncached = token_cost(price_of("openai", "gpt-4o-mini"), inp=10, out=5)
    assert row["cost"] < uncached  # the discount was applied


def test_reasoning_tokens_are_billed_as_output(client, token, upstream) -> None:
    """o4-mini's reasoning tokens (inside completion_tokens) are billed at the output price."""
    r = client.post("/openai/v1/chat/completions", json=chat("o4-mini"), headers=auth(token()))
    row = check(client, upstream, r)
    assert row["reasoning_tokens"] == 10 and row["output_tokens"] == 15


@pytest.mark.parametrize("stream", [False, True])
def test_responses_api_plain_and_streamed(client, token, upstream, stream) -> None:
    """The Responses API is priced from its usage, plain and from `response.completed`."""
    body = {"model": "gpt-5-mini", "input": "write a haiku", "stream": stream}
    r = client.post("/openai/v1/responses", json=body, headers=auth(token()))
    row = check(client, upstream, r, streamed=stream)
    assert row["reasoning_tokens"] == 10


@pytest.mark.parametrize("inp", ["one text to embed", ["first text", "second one", "third"]])
def test_embeddings_single_and_batch(client, token, upstream, inp) -> None:
    """Embeddings cost prompt_tokens x input price, for one text or a batch."""
    body = {"model": "text-embedding-3-small", "input": inp}
    r = client.post("/openai/v1/embeddings", json=body, headers=auth(token()))
    row = check(client, upstream, r)
    assert row["input_tokens"] == (4 if isinstance(inp, str) else 5)


def test_gpt_image_is_billed_on_text_and_image_tokens(client, token, upstream) -> None:
    """gpt-image-1: prompt tokens at the text price, output tokens at the image-output price."""
    body = {"model": "gpt-image-1", "prompt": "a red fox in snow", "n": 2, "quality": "low"}
    r = client.post("/openai/v1/images/generations", json=body, headers=auth(token()))
    row = check(client, upstream, r)
    assert row["cost"] == (5 * Decimal("5.00") + 544 * Decimal("40.00")) / M


def test_dall_e_is_billed_per_image(client, token, upstream) -> None:
    """dall-e-3 reports no tokens: each image returned costs the per-image price."""
    body = {"model": "dall-e-3", "prompt": "a red fox", "n": 1}
    r = client.post("/openai/v1/images/generations", json=body, headers=auth(token()))
    row = check(client, upstream, r)
    assert row["cost"] == Decimal("0.04")


def test_tts1_speech_is_billed_per_input_character_exactly(client, token, upstream) -> None:
    """tts-1 bills input characters; the binary answer passes through and the cost is exact."""
    text = "Hello there, this is a short sentence to speak."
    r = client.post("/openai/v1/audio/speech", headers=auth(token()),
                    json={"model": "tts-1", "input": text, "voice": "alloy"})
    assert r.content.startswith(b"ID3") and len(r.content) == 10 + 32 * 64
    row = check(client, upstream, r)
    assert row["cost"] == len(text) * Decimal(15) / M


def test_token_billed_speech_is_estimated_and_marked(client, token, upstream) -> None:
    """gpt-4o-mini-tts bills tokens the answer never reports: estimated from the text, marked."""
    text = "Hello there, this is a short sentence to speak."
    r = client.post("/openai/v1/audio/speech", headers=auth(token()),
                    json={"model": "gpt-4o-mini-tts", "input": text, "voice": "alloy"})
    assert r.status_code == 200
    row = ledger(client)[-1]
    assert row["cost_source"] == "estimated"
    chars = len(text)
    # The documented estimate: text tokens = chars / 4, audio out = 1.4 tokens per character.
    expected = (math.ceil(chars / 4) * Decimal("0.60") + math.ceil(chars * 1.4) * 12) / M
    assert row["cost"] == expected and row["cost"] > 0


@pytest.mark.parametrize("path", ["transcriptions", "translations"])
@pytest.mark.parametrize("model", ["whisper-1", "gpt-4o-transcribe"])
def test_audio_transcription_and_translation(client, token, upstream, path,
                                             model) -> None:
    """Multipart upload: whisper-1 per minute of the reported duration, gpt-4o-transcribe per
    audio and text token."""
    files = {"file": ("speech.wav", wav(2.5), "audio/wav")}
    r = client.post(f"/openai/v1/audio/{path}", headers=auth(token()), files=files,
                    data={"model": model})
    row = check(client, upstream, r)
    assert row["model"] == model
    if model == "whisper-1":
        assert row["cost"] == 3 * Decimal("0.006") / 60


def test_whisper_text_answer_without_duration_is_estimated_from_the_audio(
        client, token, upstream) -> None:
    """response_format=text carries no duration: the WAV header's length is billed, marked
    estimated, never $0."""
    files = {"file": ("speech.wav", wav(2.5), "audio/wav")}
    r = client.post("/openai/v1/audio/transcriptions", headers=auth(token()), files=files,
                    data={"model": "whisper-1", "response_format": "text"})
    assert r.status_code == 200 and r.text.startswith("Fake transcription")
    row = ledger(client)[-1]
    assert row["cost_source"] == "estimated"
    assert row["cost"] == Decimal("2.5") * Decimal("0.006") / 60


# -- Gemini -----------------------------------------------------------------------------------
def gemini_body(text: str = "explain the sky in a few words") -> dict[str, Any]:
    return {"contents": [{"role": "user", "parts": [{"text": text}]}]}


def test_gemini_generate_content_with_thinking(client, token, upstream) -> None:
    """generateContent: prompt x input, candidates + thoughts x output."""
    r = client.post("/geminiv1beta/models/gemini-2.5-flash:generateContent",
                    json=gemini_body(), headers=auth(token()))
    row = check(client, upstream, r)
    assert row["reasoning_tokens"] == 10 and row["output_tokens"] == 15


def test_gemini_cached_content(client, token, upstream) -> None:
    """Gemini cachedContentTokenCount bills at the cached price."""
    r = client.post("/geminiv1beta/models/gemini-2.0-flash:generateContent",
                    json=gemini_body("a b c d e f g h"), headers={**auth(token()),
                                                                  "x-fake": "cached"})
    row = check(client, upstream, r)
    assert row["cached_tokens"] == 4


@pytest.mark.parametrize("alt", ["?alt=sse", ""])
def test_gemini_stream_counts_cumulative_usage_once(client, token, upstream, alt) -> None:
    """streamGenerateContent, SSE or JSON array: every element repeats the running usage;
    the last one is the bill (a sum would charge ~3x)."""
    r = client.post(f"/geminiv1beta/models/gemini-2.5-flash:streamGenerateContent{alt}",
                    json=gemini_body(), headers={**auth(token()), "x-fake-chunks": "6"})
    row = check(client, upstream, r, streamed=True)
    assert row["output_tokens"] == 6 + 12


def test_gemini_long_context_tier(client, token, upstream) -> None:
    """gemini-2.5-pro above 200k prompt tokens: the whole call at the long-context prices."""
    body = gemini_body("w " * 200_001)
    r = client.post("/geminiv1beta/models/gemini-2.5-pro:generateContent", json=body,
                    headers=auth(token(RICH)))
    row = check(client, upstream, r)
    assert row["cost"] == (200_001 * Decimal("2.50") + 15 * Decimal("15.00")) / M


@pytest.mark.parametrize("batch", [False, True])
def test_gemini_embeddings_are_estimated_from_the_text(client, token, upstream, batch) -> None:
    """embedContent and batchEmbedContents report no usage: ~4 characters a token, marked."""
    texts = ["the quick brown fox", "jumps over the lazy dog!"]
    model = "gemini-embedding-001"
    if batch:
        path = f"/geminiv1beta/models/{model}:batchEmbedContents"
        body: dict[str, Any] = {"requests": [{"model": f"models/{model}",
                                              "content": {"parts": [{"text": t}]}}
                                             for t in texts]}
    else:
        texts = texts[:1]
        path = f"/geminiv1beta/models/{model}:embedContent"
        body = {"content": {"parts": [{"text": texts[0]}]}}
    r = client.post(path, json=body, headers=auth(token()))
    assert r.status_code == 200, r.text
    row = ledger(client)[-1]
    tokens = math.ceil(sum(len(t) for t in texts) / 4)
    assert row["cost_source"] == "estimated"
    assert row["cost"] == tokens * Decimal("0.15") / M and row["cost"] > 0


def test_gemini_count_tokens_is_free(client, token, upstream) -> None:
    """countTokens is not billed by Google: recorded at $0 with source `free`."""
    r = client.post("/geminiv1beta/models/gemini-2.5-flash:countTokens", json=gemini_body(),
                    headers=auth(token()))
    assert r.status_code == 200 and r.json()["totalTokens"] > 0
    row = ledger(client)[-1]
    assert row["cost"] == 0 and row["cost_source"] == "free"


# -- OpenRouter -------------------------------------------------------------------------------
@pytest.mark.parametrize("stream", [False, True])
def test_openrouter_reported_cost(client, token, upstream, stream) -> None:
    """OpenRouter's `usage.cost` is the cost, exactly, plain and streamed."""
    r = client.post("/openrouter/v1/chat/completions",
                    json=chat("anthropic/claude-3.5-haiku", stream=stream), headers=auth(token()))
    check(client, upstream, r, source="reported", streamed=stream)


@pytest.mark.parametrize("stream", [False, True])
def test_openrouter_without_cost_falls_back_to_models_prices(client, token, upstream,
                                                             stream) -> None:
    """No `usage.cost`: token counts x the model's /models prices, fetched once and cached."""
    headers = auth(token())
    for _ in range(2):
        r = client.post("/openrouter/v1/chat/completions",
                        json=chat("test/nocost-model", stream=stream), headers=headers)
        check(client, upstream, r, source="computed", streamed=stream)
    fetches = [x for x in upstream.state.received if x["path"] == "/openrouter/v1/models"]
    assert len(fetches) == 1


def test_upload_length_is_read_from_wav_and_mp3_headers() -> None:
    """The duration estimate behind whisper text answers: exact for WAV, the frame bit rate
    for MP3, an assumed 128 kbit/s for anything else."""
    from relay.costing.usage import audio_seconds

    assert audio_seconds(wav(2.5)) == Decimal("2.5")
    frame = bytes([0xFF, 0xFB, 0x50, 0x00])  # MPEG-1 Layer III, 64 kbit/s
    tag = b"ID3\x04\x00\x00\x00\x00\x00\x0a" + b"\x00" * 10
    assert audio_seconds(tag + frame + b"\x00" * (8000 * 3 - 4)) == Decimal(3)
    assert audio_seconds(b"\x1aE\xdf\xa3" + b"\x00" * 31_996) == Decimal(2)  # webm: assumed


def test_model_field_is_read_by_the_boundary_not_from_file_bytes(client, token, upstream) -> None:
    """Bytes inside the uploaded file that look like a `model` field do not choose the price."""
    decoy = b'\r\nContent-Disposition: form-data; name="model"\r\n\r\ngpt-4o-mini-transcribe'
    body = (b'--B\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n'
            b"Content-Type: audio/wav\r\n\r\n" + wav(1) + decoy + b"\r\n--B\r\n"
            b'Content-Disposition: form-data; name="model"\r\n\r\nwhisper-1\r\n--B--\r\n')
    headers = {**auth(token()), "content-type": "multipart/form-data; boundary=B"}
    r = client.post("/openai/v1/audio/transcriptions", headers=headers, content=body)
    row = check(client, upstream, r)
    assert row["model"] == "whisper-1"
