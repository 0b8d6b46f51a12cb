"""google-genai, configured as its docs say for a custom endpoint: the API key and
`http_options={"base_url": ...}`. The SDK appends its API version to `base_url`, so the relay's
`/gemini` route takes the version from the path."""

from __future__ import annotations

import asyncio

import pytest
from google import genai
from google.genai import types

from tests.clients.conftest import REPLY, Clock, User, assert_recorded, assert_streamed

MODEL = "gemini-2.5-flash"


def client(user: User, **options: str) -> genai.Client:
    return genai.Client(api_key=user.token,
                        http_options=types.HttpOptions(base_url=f"{user.stack.url}/gemini", **options))


def upstream_paths(user: User) -> list[str]:
    return [r["path"] for r in user.stack.fake.state.received]


@pytest.mark.parametrize("version", [None, "v1beta", "v1"])
def test_generate_content(user: User, version: str | None) -> None:
    """`generate_content` with the SDK's default API version and with `api_version` set: the
    call reaches the provider under that version, answered and priced as on /geminiv1beta."""
    sdk = client(user, **({"api_version": version} if version else {}))
    reply = sdk.models.generate_content(model=MODEL, contents="Say hello")
    assert reply.text == REPLY
    assert reply.usage_metadata is not None and reply.usage_metadata.candidates_token_count == 5
    [row] = user.rows(1)
    assert_recorded(user, row, "gemini", MODEL, streamed=False)
    [path] = upstream_paths(user)
    sent_version = version or sdk._api_client._http_options.api_version
    assert path == f"/gemini/{sent_version}/models/{MODEL}:generateContent"
    assert row["path"] == f"/{sent_version}/models/{MODEL}:generateContent"


def test_generate_content_stream(user: User) -> None:
    """`generate_content_stream` (SSE): text arrives piece by piece; the cost is recorded."""
    clock = Clock()
    sdk = client(user)  # kept: a Client closes its connection pool when collected
    for chunk in sdk.models.generate_content_stream(model=MODEL, contents="Say hello"):
        clock.piece(chunk.text)
    assert clock.text == REPLY
    assert_streamed(clock.arrivals)
    [row] = user.rows(1)
    assert_recorded(user, row, "gemini", MODEL, streamed=True)


def test_async_stream(user: User) -> None:
    """The async client (`client.aio`) streams too."""

    async def run() -> Clock:
        clock = Clock()
        sdk = client(user, api_version="v1beta")
        stream = await sdk.aio.models.generate_content_stream(model=MODEL, contents="Say hello")
        async for chunk in stream:
            clock.piece(chunk.text)
        return clock

    clock = asyncio.run(run())
    assert clock.text == REPLY
    assert_streamed(clock.arrivals)
    [row] = user.rows(1)
    assert_recorded(user, row, "gemini", MODEL, streamed=True)


def test_count_tokens_is_free(user: User) -> None:
    """`count_tokens` goes through and costs nothing."""
    assert client(user).models.count_tokens(model=MODEL, contents="one two three").total_tokens == 3
    [row] = user.rows(1)
    assert row["cost"] == 0 and row["outcome"] == "ok"
