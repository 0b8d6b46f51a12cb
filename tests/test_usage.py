"""Reading usage from provider responses: real documented bodies → one provider-neutral Usage."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest

from relay.costing.usage import (
    Usage,
    request_text_chars,
    usage_from_json,
    usage_from_speech_request,
)


def _json(text: str) -> Any:
    return json.loads(text, parse_float=Decimal)  # as the relay parses: exact money


# (name, provider, response body as the provider documents it, expected Usage)
CASES: list[tuple[str, str, str, Usage]] = [
    (
        # https://platform.openai.com/docs/api-reference/chat/create (example response)
        "openai chat completion",
        "openai",
        """{"id": "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT", "object": "chat.completion",
        "created": 1741569952, "model": "gpt-4.1-2025-04-14",
        "choices": [{"index": 0, "message": {"role": "assistant",
          "content": "Hello! How can I assist you today?", "refusal": null, "annotations": []},
          "logprobs": null, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 19, "completion_tokens": 10, "total_tokens": 29,
          "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
          "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0,
            "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}},
        "service_tier": "default"}""",
        Usage(input_tokens=19, output_tokens=10),
    ),
    (
        # Responses API object, https://platform.openai.com/docs/api-reference/responses/object;
        # numbers from a recorded gpt-4.1 response with a prompt-cache hit
        # (https://platform.openai.com/docs/guides/prompt-caching).
        "openai responses with cached input",
        "openai",
        """{"id": "resp_0cd5d6b8310055d600696a1776b42c81a199fbb02248a8bfa0",
        "object": "response", "status": "completed", "model": "gpt-4.1-2025-04-14",
        "output": [{"type": "message", "role": "assistant", "content": [{"type": "output_text",
          "text": "- I provide clear, accurate, and concise answers.", "annotations": []}]}],
        "usage": {"input_tokens": 12033, "input_tokens_details": {"cached_tokens": 11904},
          "output_tokens": 44, "output_tokens_details": {"reasoning_tokens": 0},
          "total_tokens": 12077}}""",
        Usage(input_tokens=12033, output_tokens=44, cached_input_tokens=11904),
    ),
    (
        # https://platform.openai.com/docs/guides/reasoning (usage of a reasoning response)
        "openai reasoning tokens",
        "openai",
        """{"object": "response", "model": "o4-mini-2025-04-16", "usage": {"input_tokens": 75,
        "input_tokens_cached": 0, "output_tokens": 1186,
        "output_tokens_details": {"reasoning_tokens": 1024}, "total_tokens": 1261}}""",
        Usage(input_tokens=75, output_tokens=1186, reasoning_tokens=1024),
    ),
    (
        # https://platform.openai.com/docs/api-reference/embeddings/create (example response)
        "openai embeddings",
        "openai",
        """{"object": "list", "data": [{"object": "embedding",
        "embedding": [0.0023064255, -0.009327292, -0.0028842222], "index": 0}],
        "model": "text-embedding-ada-002", "usage": {"prompt_tokens": 8, "total_tokens": 8}}""",
        Usage(input_tokens=8),
    ),
    (
        # https://platform.openai.com/docs/api-reference/images/object (gpt-image-1)
        "openai gpt-image-1",
        "openai",
        """{"created": 1713833628, "data": [{"b64_json": "iVBORw0KGgo="}],
        "usage": {"total_tokens": 100, "input_tokens": 50, "output_tokens": 50,
          "input_tokens_details": {"text_tokens": 10, "image_tokens": 40}}}""",
        Usage(input_tokens=50, output_tokens=50, image_input_tokens=40, image_output_tokens=50,
              images=1),
    ),
    (
        # https://platform.openai.com/docs/api-reference/images/create (dall-e-3, n=2)
        "openai dall-e-3 images",
        "openai",
        """{"created": 1589478378, "data": [{"url": "https://example.test/1.png",
        "revised_prompt": "a cat"}, {"url": "https://example.test/2.png"}]}""",
        Usage(images=2),
    ),
    (
        # https://platform.openai.com/docs/api-reference/audio/json-object (gpt-4o-transcribe)
        "openai transcription billed in tokens",
        "openai",
        """{"text": "Imagine the wildest idea that you've ever had, and you're curious about \
how it might scale to something that's a 100, a 1,000 times bigger.",
        "usage": {"type": "tokens", "input_tokens": 14,
          "input_token_details": {"text_tokens": 0, "audio_tokens": 14},
          "output_tokens": 45, "total_tokens": 59}}""",
        Usage(input_tokens=14, output_tokens=45, audio_input_tokens=14),
    ),
    (
        # https://platform.openai.com/docs/api-reference/audio/json-object (whisper-1 usage)
        "openai transcription billed by duration",
        "openai",
        """{"text": "Hello there.", "usage": {"type": "duration", "seconds": 9}}""",
        Usage(audio_seconds=Decimal(9)),
    ),
    (
        # https://platform.openai.com/docs/api-reference/audio/verbose-json-object
        "openai verbose_json transcription",
        "openai",
        """{"task": "transcribe", "language": "english", "duration": 8.470000267028809,
        "text": "The beach was a popular spot on a hot summer day.", "segments": []}""",
        Usage(audio_seconds=Decimal("8.470000267028809")),
    ),
    (
        # https://platform.openai.com/docs/api-reference/audio/speech-audio-done-event
        "openai streamed speech",
        "openai",
        """{"type": "speech.audio.done",
        "usage": {"input_tokens": 14, "output_tokens": 101, "total_tokens": 115}}""",
        Usage(input_tokens=14, output_tokens=101, audio_output_tokens=101),
    ),
    (
        # Chat completion with audio in and out: field names per
        # https://platform.openai.com/docs/api-reference/chat/object (CompletionUsage);
        # the counts are illustrative.
        "openai chat with audio",
        "openai",
        """{"object": "chat.completion", "model": "gpt-4o-audio-preview-2024-12-17",
        "usage": {"prompt_tokens": 120, "completion_tokens": 97, "total_tokens": 217,
          "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 100},
          "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 78,
            "text_tokens": 19}}}""",
        Usage(input_tokens=120, output_tokens=97, audio_input_tokens=100, audio_output_tokens=78),
    ),
    (
        # https://openrouter.ai/docs/use-cases/usage-accounting (the documented usage object;
        # upstream_inference_cost "only applies to BYOK requests": both are the operator's cost)
        "openrouter usage accounting (BYOK)",
        "openrouter",
        """{"object": "chat.completion.chunk", "usage": {"completion_tokens": 2,
        "completion_tokens_details": {"reasoning_tokens": 0}, "cost": 0.95,
        "cost_details": {"upstream_inference_cost": 19}, "prompt_tokens": 194,
        "prompt_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 100,
          "audio_tokens": 0}, "total_tokens": 196}}""",
        Usage(input_tokens=194, output_tokens=2, cache_write_tokens=100,
              reported_cost=Decimal("19.95")),
    ),
    (
        # OpenRouter non-BYOK: `cost` is the whole charge, kept to the digit.
        "openrouter reported cost",
        "openrouter",
        """{"id": "gen-1", "model": "openai/gpt-4o-mini", "usage": {"prompt_tokens": 12,
        "completion_tokens": 7, "total_tokens": 19, "cost": 0.0000060000000000000001,
        "is_byok": false, "cost_details": {"upstream_inference_cost": null},
        "prompt_tokens_details": {"cached_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 3}}}""",
        Usage(input_tokens=12, output_tokens=7, reasoning_tokens=3,
              reported_cost=Decimal("0.0000060000000000000001")),
    ),
    (
        # Gemini response with thinking, as documented on
        # https://firebase.google.com/docs/ai-logic/server-prompt-templates/get-started
        "gemini thinking tokens",
        "geminiv1beta",
        """{"candidates": [{"content": {"parts": [{"text": "Thank you for your business!"}],
          "role": "model"}, "finishReason": "STOP", "index": 0}],
        "usageMetadata": {"promptTokenCount": 34, "candidatesTokenCount": 418,
          "totalTokenCount": 890, "promptTokensDetails": [{"modality": "TEXT",
          "tokenCount": 34}], "thoughtsTokenCount": 438},
        "modelVersion": "gemini-3-flash-preview", "responseId": "3w4Vad6yF-y1vdIP_q_zgAw"}""",
        Usage(input_tokens=34, output_tokens=856, reasoning_tokens=438),
    ),
    (
        # Gemini 2.5 Pro with a context cache (usageMetadata as posted on
        # https://discuss.ai.google.dev/t/question-about-gemini-api-caching-pricing/107349;
        # promptTokenCount includes the cached tokens, per
        # https://ai.google.dev/api/generate-content#UsageMetadata)
        "gemini cached content",
        "gemini",
        """{"usageMetadata": {"promptTokenCount": 11500, "candidatesTokenCount": 1000,
        "totalTokenCount": 22500, "cachedContentTokenCount": 10000,
        "thoughtsTokenCount": 10000}}""",
        Usage(input_tokens=11500, output_tokens=11000, cached_input_tokens=10000,
              reasoning_tokens=10000),
    ),
    (
        # Audio input and tool-use prompt tokens; fields per
        # https://ai.google.dev/api/generate-content#UsageMetadata (counts illustrative).
        "gemini audio input",
        "gemini",
        """{"usageMetadata": {"promptTokenCount": 809, "candidatesTokenCount": 50,
        "toolUsePromptTokenCount": 20, "totalTokenCount": 879,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 9},
          {"modality": "AUDIO", "tokenCount": 800}],
        "candidatesTokensDetails": [{"modality": "TEXT", "tokenCount": 50}]}}""",
        Usage(input_tokens=829, output_tokens=50, audio_input_tokens=800),
    ),
    (
        # Gemini TTS: the answer is audio (candidatesTokensDetails modality AUDIO).
        "gemini speech output",
        "gemini",
        """{"usageMetadata": {"promptTokenCount": 12, "candidatesTokenCount": 640,
        "totalTokenCount": 652, "candidatesTokensDetails": [{"modality": "AUDIO",
        "tokenCount": 640}]}}""",
        Usage(input_tokens=12, output_tokens=640, audio_output_tokens=640),
    ),
]


@pytest.mark.parametrize(("name", "provider", "body", "expected"), CASES, ids=[c[0] for c in CASES])
def test_usage_from_documented_responses(
    name: str, provider: str, body: str, expected: Usage
) -> None:
    """Each provider's documented response body reads as exactly these counts."""
    assert usage_from_json(provider, _json(body)) == expected


def test_responses_stream_events_carry_usage_inside_the_response() -> None:
    """`response.completed` wraps the usage in `response`; `response.created` has none yet."""
    done = {"type": "response.completed", "response": {"usage": {
        "input_tokens": 36, "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": 87, "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": 123}}}
    assert usage_from_json("openai", done) == Usage(input_tokens=36, output_tokens=87)
    created = {"type": "response.created", "response": {"usage": None, "status": "in_progress"}}
    assert usage_from_json("openai", created) is None


@pytest.mark.parametrize(
    "body",
    [
        {"object": "chat.completion.chunk", "choices": [], "usage": None},
        {"text": "a translation with no usage"},
        {"embedding": {"values": [0.1, 0.2]}},  # Gemini embedContent reports no usage
        {"totalTokens": 31},  # Gemini countTokens
        [1, 2, 3],
        "text",
        None,
    ],
)
def test_bodies_without_usage_read_as_none(body: Any) -> None:
    """No usage is None — never a zero Usage that would cost $0."""
    assert usage_from_json("openai", body) is None


def test_reported_cost_is_exact_whether_parsed_as_decimal_or_float() -> None:
    """A JSON cost keeps its digits: Decimal from the text, or a float's shortest repr."""
    text = '{"usage": {"prompt_tokens": 1, "completion_tokens": 1, "cost": 0.000123}}'
    exact = usage_from_json("openrouter", _json(text))
    from_float = usage_from_json("openrouter", json.loads(text))
    assert exact is not None and from_float is not None
    assert exact.reported_cost == from_float.reported_cost == Decimal("0.000123")


def test_only_openrouter_cost_is_taken_as_reported() -> None:
    """A `cost` field from another OpenAI-style server is not trusted as the bill."""
    body = {"usage": {"prompt_tokens": 3, "completion_tokens": 4, "cost": 99}}
    usage = usage_from_json("openai", body)
    assert usage is not None and usage.reported_cost is None


@pytest.mark.parametrize(
    ("usage", "expected"),
    [
        ({"prompt_tokens": None, "completion_tokens": "7"}, Usage()),
        ({"prompt_tokens": 5.0, "completion_tokens": -3}, Usage(input_tokens=5)),
        ({"prompt_tokens": True, "completion_tokens": 2}, Usage(output_tokens=2)),
        ({"prompt_tokens": 4, "cost": "abc"}, Usage(input_tokens=4)),
        ({"prompt_tokens": 4, "cost": -1}, Usage(input_tokens=4)),
        ({"prompt_tokens": 4, "prompt_tokens_details": [1]}, Usage(input_tokens=4)),
    ],
)
def test_malformed_counts_are_read_defensively(usage: dict[str, Any], expected: Usage) -> None:
    """Nulls, strings, negatives and wrong types never crash or go negative."""
    assert usage_from_json("openrouter", {"usage": usage}) == expected


def test_cached_audio_is_not_counted_twice() -> None:
    """Audio read from the cache is cached input, not also uncached audio (Realtime shape)."""
    body = {"usage": {"input_tokens": 1000, "output_tokens": 10, "input_tokens_details": {
        "cached_tokens": 300, "text_tokens": 400, "audio_tokens": 600,
        "cached_tokens_details": {"text_tokens": 100, "audio_tokens": 200}}}}
    usage = usage_from_json("openai", body)
    assert usage is not None
    assert (usage.cached_input_tokens, usage.audio_input_tokens) == (300, 400)


def test_speech_request_counts_characters_exactly_and_estimates_tokens() -> None:
    """tts-1 bills characters (exact); token counts for gpt-4o-mini-tts are marked estimated."""
    usage = usage_from_speech_request(
        {"model": "tts-1", "input": "Hello world, ça va?", "voice": "alloy"}
    )
    assert usage.input_characters == 19
    assert usage.input_tokens == 5 and usage.audio_output_tokens == 27
    assert usage.output_tokens == usage.audio_output_tokens and usage.estimated
    assert usage_from_speech_request({"input": 3}) == Usage(estimated=True)


def test_request_text_chars_counts_prompt_text_only() -> None:
    """Prompt text in chat, Responses and Gemini bodies counts; media and settings do not."""
    chat = {"model": "gpt-4o-mini", "temperature": 0.2, "messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": [{"type": "text", "text": "Hi!"},
                                     {"type": "image_url", "image_url": {"url": "data:AAAA"}}]},
    ]}
    assert request_text_chars(chat) == len("Be brief.") + len("Hi!")
    responses = {"model": "o3", "instructions": "abc", "input": "hello"}
    assert request_text_chars(responses) == 8
    gemini = {"contents": [{"role": "user", "parts": [{"text": "four"},
                                                      {"inlineData": {"data": "QUJD"}}]}],
              "systemInstruction": {"parts": [{"text": "sys"}]}}
    assert request_text_chars(gemini) == 7
    batch = {"requests": [{"model": "models/gemini-embedding-001",
                           "content": {"parts": [{"text": "ab"}]}},
                          {"content": {"parts": [{"text": "cde"}]}}]}
    assert request_text_chars(batch) == 5
    assert request_text_chars({"input": ["one", "two"]}) == 6
