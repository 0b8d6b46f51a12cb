"""The clients people use, unchanged, against a real relay.

One `python -m relay serve` process (as operators run it: keys and upstream bases in the
environment, a policy file) in front of the fake providers on a real port, for the whole
directory. The fakes space each stream's pieces `PACE` seconds apart, as a model's tokens arrive,
so a test can tell a stream that reached the client piece by piece from one that was buffered.
Each test signs in as its own user, so the ledger rows it reads back are its own.

Each client is configured the way its own documentation tells users to set a custom base URL and
key — no extra headers, no test hooks in the client. One file per client: openai (Python), the
openai npm package (node/), llm, google-genai, langchain-openai, litellm, anthropic (Python) and
Claude Code (node/, the npm package with its native binary); the keyless `--dev` relay and the
README's examples; plain `fetch` through aipipe.js is in tests/e2e. docs/clients.md is the table
of what works.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from relay.auth.tokens import issue_token
from relay.settings import load_settings
from testkit.fakes import DEFAULT_KEYS, create_fake_upstream, serve_asgi
from testkit.relay_process import RelayProcess, clean_env, serve_relay

PACE = 0.1  # seconds between the fake's stream pieces
REPLY = "Hello from the fake upstream"  # the fakes' answer: five words, five stream pieces
POLICY = """
[budget]
"*" = { limit = 5.0, days = 7 }
"@small.example" = { limit = 0.5, days = 7 }
"""
SMALL_BUDGET = "0.5"  # USD, for users of small.example


@dataclass(frozen=True)
class Stack:
    """The relay (`url`) in front of the fake providers (`fake`, its `.state.billed` holding what
    each provider told its client it used)."""

    url: str
    fake: Starlette
    env: dict[str, str]
    work: Path

    def user(self, domain: str = "clients.example") -> User:
        email = f"u{uuid.uuid4().hex[:12]}@{domain}"
        settings = load_settings(self.env, cwd=self.work)
        return User(self, email, issue_token(settings, email))

    def prices(self, provider: str, model: str) -> dict[str, Any]:
        return httpx.get(self.url + "/prices", timeout=10).json()[provider][model]


@dataclass(frozen=True)
class User:
    stack: Stack
    email: str
    token: str

    def rows(self, count: int = 1, timeout: float = 10) -> list[dict[str, Any]]:
        """This user's ledger rows, oldest first, once `count` are recorded (a stream is
        recorded when it ends, which may be a moment after the client read its last byte)."""
        rows: list[dict[str, Any]] = []

        def recorded() -> bool:
            nonlocal rows
            r = httpx.get(self.stack.url + "/usage/requests",
                          headers={"Authorization": f"Bearer {self.token}"}, timeout=10)
            r.raise_for_status()
            rows = list(reversed(r.json()["data"]))
            return len(rows) >= count

        wait_for(recorded, timeout, f"{count} ledger rows for {self.email}")
        assert len(rows) == count, f"expected {count} ledger rows, got {rows}"
        return rows


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def told(usage: dict[str, Any]) -> tuple[int, int]:
    """(input, output) tokens as a provider told its client: OpenAI chat or embeddings, the
    Responses API, or Gemini (thinking is billed as output)."""
    if "promptTokenCount" in usage:
        return usage["promptTokenCount"], (
            usage.get("candidatesTokenCount", 0) + usage.get("thoughtsTokenCount", 0))
    if "input_tokens" in usage:
        return usage["input_tokens"], usage["output_tokens"]
    return usage["prompt_tokens"], usage.get("completion_tokens", 0)


def assert_recorded(user: User, row: dict[str, Any], provider: str, model: str,
                    *, streamed: bool) -> None:
    """The ledger row is the call the provider billed: its tokens as the provider told them, and
    its cost those tokens at the relay's prices."""
    fake = user.stack.fake
    wait_for(lambda: bool(fake.state.billed), 10, "the fake provider's bill")
    billed = fake.state.billed[-1]
    assert (billed["provider"], billed["model"], billed["stream"]) == (provider, model, streamed)
    tokens_in, tokens_out = told(billed["usage"])
    assert (row["provider"], row["model"], row["outcome"], row["streamed"]) == (
        provider, model, "ok", streamed)
    assert (row["input_tokens"], row["output_tokens"]) == (tokens_in, tokens_out)
    price = user.stack.prices(provider, model)
    per_million = (Decimal(str(price["input"])) * tokens_in
                   + Decimal(str(price.get("output", 0))) * tokens_out)
    assert row["cost_source"] == "computed"
    assert Decimal(str(row["cost"])) == (per_million / 1_000_000).quantize(Decimal("1e-10"))
    assert row["cost"] > 0


def assert_streamed(arrivals: list[float], pieces: int = 5) -> None:
    """Text reached the client piece by piece as the provider sent it (`PACE` apart), not in one
    burst at the end."""
    assert len(arrivals) >= pieces, f"only {len(arrivals)} text pieces arrived"
    spread = arrivals[-1] - arrivals[0]
    assert spread >= (pieces - 1) * PACE * 0.5, f"{pieces} pieces arrived within {spread:.3f}s"


class Clock:
    """Arrival times of a stream's text pieces."""

    def __init__(self) -> None:
        self.arrivals: list[float] = []
        self.text = ""

    def piece(self, text: str | None) -> None:
        if text:
            self.arrivals.append(time.monotonic())
            self.text += text


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """`python -m relay serve` with OpenAI, OpenRouter, Gemini and Anthropic keys, its upstream
    bases on the fake providers (Gemini's base ending in its version, like Google's own)."""
    fake = create_fake_upstream(pace=PACE)
    work = tmp_path_factory.mktemp("clients-relay")
    (work / "aipipe.toml").write_text(POLICY)
    with serve_asgi(fake) as up:
        env = clean_env(
            AIPIPE_SECRET="clients-suite-secret-0123456789abcdef0123",
            AIPIPE_DATA_DIR=str(work / "data"),
            AIPIPE_CONFIG=str(work / "aipipe.toml"),
            OPENAI_API_KEY=DEFAULT_KEYS["openai"],
            AIPIPE_OPENAI_BASE=f"{up}/openai",
            OPENROUTER_API_KEY=DEFAULT_KEYS["openrouter"],
            AIPIPE_OPENROUTER_BASE=f"{up}/openrouter",
            GEMINI_API_KEY=DEFAULT_KEYS["gemini"],
            AIPIPE_GEMINI_BASE=f"{up}/gemini/v1beta",
            ANTHROPIC_API_KEY=DEFAULT_KEYS["anthropic"],
            AIPIPE_ANTHROPIC_BASE=f"{up}/anthropic",
        )
        with serve_relay(work, env) as url:
            yield Stack(url, fake, env, work)


@pytest.fixture
def user(stack: Stack) -> User:
    """A new user; the fake forgets earlier tests' calls."""
    stack.fake.state.reset()
    return stack.user()


@dataclass(frozen=True)
class DevRelay:
    """`aipipe serve --dev` as `make serve` runs it: no keys (the built-in demo model answers),
    no policy file, its data in `work/data`."""

    url: str
    work: Path
    process: RelayProcess

    def token(self, email: str = "you@example.com") -> str:
        r = httpx.post(self.url + "/dev-login", json={"email": email}, timeout=10)
        r.raise_for_status()
        return r.json()["token"]


@pytest.fixture(scope="session")
def dev_relay(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevRelay]:
    work = tmp_path_factory.mktemp("dev-relay")
    relay = RelayProcess(clean_env(), "--dev", cwd=work, log=work / "relay.log")
    try:
        relay.wait_ready()
        yield DevRelay(relay.url, work, relay)
    finally:
        relay.stop(timeout=10)
