"""The openai Python package (sync and async), configured as its README says: `api_key` and
`base_url` (or OPENAI_API_KEY / OPENAI_BASE_URL)."""

from __future__ import annotations

import asyncio

import openai
import pytest

from tests.clients.conftest import REPLY, Clock, User, assert_recorded, assert_streamed

MESSAGES = [{"role": "user", "content": "Say hello"}]


def sync_client(user: User) -> openai.OpenAI:
    return openai.OpenAI(api_key=user.token, base_url=f"{user.stack.url}/openai/v1")


def async_client(user: User) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(api_key=user.token, base_url=f"{user.stack.url}/openai/v1")


def test_chat(user: User) -> None:
    """A plain chat completion: the answer, its usage, and the recorded cost."""
    reply = sync_client(user).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert reply.choices[0].message.content == REPLY
    assert reply.usage is not None and reply.usage.completion_tokens == 5
    [row] = user.rows(1)
    assert_recorded(user, row, "openai", "gpt-4o-mini", streamed=False)


def test_stream_with_the_naive_loop(user: User) -> None:
    """The loop in most student code, `chunk.choices[0].delta.content`, runs to the end: the relay
    reads the usage chunk it asked for but does not forward it, so every chunk has a choice."""
    clock = Clock()
    stream = sync_client(user).chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES, stream=True)
    for chunk in stream:
        clock.piece(chunk.choices[0].delta.content)
    assert clock.text == REPLY
    assert_streamed(clock.arrivals)
    [row] = user.rows(1)
    assert_recorded(user, row, "openai", "gpt-4o-mini", streamed=True)


def test_stream_with_usage_asked_for(user: User) -> None:
    """A client that asks for usage itself gets the usage chunk, as from the provider."""
    chunks = list(sync_client(user).chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES, stream=True,
        stream_options={"include_usage": True}))
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 5
    assert all(c.choices for c in chunks[:-1])
    [row] = user.rows(1)
    assert row["output_tokens"] == chunks[-1].usage.completion_tokens


def test_responses_create_and_stream(user: User) -> None:
    """The Responses API, plain and through `responses.stream()` (the SDK's own accumulator,
    which needs OpenAI's event sequence: items, content parts, indexes)."""
    client = sync_client(user)
    reply = client.responses.create(model="gpt-4o-mini", input="Say hello")
    assert reply.output_text == REPLY
    [first] = user.rows(1)
    assert_recorded(user, first, "openai", "gpt-4o-mini", streamed=False)
    clock = Clock()
    with client.responses.stream(model="gpt-4o-mini", input="Say hello") as stream:
        for event in stream:
            if event.type == "response.output_text.delta":
                clock.piece(event.delta)
        final = stream.get_final_response()
    assert clock.text == final.output_text == REPLY
    assert final.usage is not None and final.usage.output_tokens == 5
    assert_streamed(clock.arrivals)
    _, second = user.rows(2)
    assert_recorded(user, second, "openai", "gpt-4o-mini", streamed=True)


def test_embeddings_and_models(user: User) -> None:
    """Embeddings (the SDK asks for base64 and decodes it) and the model list."""
    client = sync_client(user)
    result = client.embeddings.create(model="text-embedding-3-small", input=["a cat", "a dog"])
    assert [len(d.embedding) for d in result.data] == [8, 8]
    [row] = user.rows(1)
    assert_recorded(user, row, "openai", "text-embedding-3-small", streamed=False)
    assert "gpt-4o-mini" in {m.id for m in client.models.list()}


def test_environment_variables(user: User, monkeypatch: pytest.MonkeyPatch) -> None:
    """OPENAI_API_KEY and OPENAI_BASE_URL, with no arguments at all."""
    monkeypatch.setenv("OPENAI_API_KEY", user.token)
    monkeypatch.setenv("OPENAI_BASE_URL", f"{user.stack.url}/openai/v1")
    reply = openai.OpenAI().chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert reply.choices[0].message.content
    assert user.rows(1)[0]["cost"] > 0


def test_async_chat_stream_and_responses_stream(user: User) -> None:
    """AsyncOpenAI: a chat stream read with the naive loop, and `responses.stream()`."""

    async def run() -> tuple[Clock, str]:
        client = async_client(user)
        clock = Clock()
        stream = await client.chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES, stream=True)
        async for chunk in stream:
            clock.piece(chunk.choices[0].delta.content)
        async with client.responses.stream(model="gpt-4o-mini", input="Say hello") as events:
            final = await events.get_final_response()
        await client.close()
        return clock, final.output_text

    clock, text = asyncio.run(run())
    assert clock.text == text == REPLY
    assert_streamed(clock.arrivals)
    chat, responses = user.rows(2)
    assert (chat["path"], responses["path"]) == ("/v1/chat/completions", "/v1/responses")
    assert_recorded(user, responses, "openai", "gpt-4o-mini", streamed=True)
    assert chat["outcome"] == "ok" and chat["cost"] > 0
