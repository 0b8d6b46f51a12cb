"""langchain-openai's ChatOpenAI, configured as its docs say for a proxy: `api_key` and
`base_url`."""

from __future__ import annotations

import asyncio

from langchain_openai import ChatOpenAI

from tests.clients.conftest import REPLY, Clock, User, assert_recorded, assert_streamed


def chat_model(user: User) -> ChatOpenAI:
    return ChatOpenAI(model="gpt-4o-mini", api_key=user.token, base_url=f"{user.stack.url}/openai/v1")


def test_invoke(user: User) -> None:
    """`invoke`: the answer and the token usage LangChain reports, as the ledger records them."""
    message = chat_model(user).invoke("Say hello")
    assert message.content == REPLY
    [row] = user.rows(1)
    assert_recorded(user, row, "openai", "gpt-4o-mini", streamed=False)
    assert message.usage_metadata is not None
    assert message.usage_metadata["output_tokens"] == row["output_tokens"]


def test_stream(user: User) -> None:
    """`stream`: chunks arrive piece by piece; the recorded cost is the streamed call's."""
    clock = Clock()
    for chunk in chat_model(user).stream("Say hello"):
        clock.piece(chunk.content if isinstance(chunk.content, str) else None)
    assert clock.text == REPLY
    assert_streamed(clock.arrivals)
    [row] = user.rows(1)
    assert_recorded(user, row, "openai", "gpt-4o-mini", streamed=True)


def test_astream(user: User) -> None:
    """`astream`, the async form chat apps use."""

    async def run() -> Clock:
        clock = Clock()
        async for chunk in chat_model(user).astream("Say hello"):
            clock.piece(chunk.content if isinstance(chunk.content, str) else None)
        return clock

    clock = asyncio.run(run())
    assert clock.text == REPLY
    assert_streamed(clock.arrivals)
    [row] = user.rows(1)
    assert_recorded(user, row, "openai", "gpt-4o-mini", streamed=True)
