"""The official openai package, used as a client through the relay."""

from __future__ import annotations

import openai
import pytest

from tests.conftest import ADMIN


@pytest.fixture
def sdk(client, token):
    def build(email: str = "student@example.com", **kw) -> openai.OpenAI:
        return openai.OpenAI(
            api_key=token(email), base_url="http://testserver/openai/v1", http_client=client, **kw
        )

    return build


def test_chat_plain_and_streamed(sdk) -> None:
    """Chat completions work plain and streamed; the usage chunk the relay asked for is not
    forwarded (every chunk has a choice), and one the client asks for is."""
    c = sdk()
    reply = c.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
    )
    assert reply.choices[0].message.content
    assert reply.usage is not None and reply.usage.completion_tokens > 0
    chunks = list(
        c.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], stream=True
        )
    )
    assert "".join(ch.choices[0].delta.content or "" for ch in chunks)
    assert all(ch.usage is None for ch in chunks)
    asked = list(
        c.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert asked[-1].choices == [] and asked[-1].usage is not None


def test_responses_and_embeddings(sdk) -> None:
    """The Responses API and embeddings come back in the SDK's types."""
    c = sdk()
    resp = c.responses.create(model="gpt-4o-mini", input="hello")
    assert resp.output_text
    emb = c.embeddings.create(model="text-embedding-3-small", input=["a", "b"])
    assert len(emb.data) == 2 and len(emb.data[0].embedding) > 0


def test_exhausted_budget_raises_at_once_without_retries(sdk, upstream) -> None:
    """Over budget the SDK raises RateLimitError (insufficient_quota) on the first try."""
    c = sdk("blocked@example.com", max_retries=5)
    with pytest.raises(openai.RateLimitError) as info:
        c.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    assert info.value.code == "insufficient_quota"
    assert upstream.state.received == []


def test_sdk_sees_a_clear_auth_error(client) -> None:
    """A bad token surfaces as AuthenticationError with the relay's message."""
    c = openai.OpenAI(
        api_key="not-a-token", base_url="http://testserver/openai/v1", http_client=client
    )
    with pytest.raises(openai.AuthenticationError, match="Invalid token"):
        c.models.list()


def test_admin_is_also_a_user(sdk) -> None:
    """Admins call providers like anyone else."""
    assert sdk(ADMIN).models.list().data
