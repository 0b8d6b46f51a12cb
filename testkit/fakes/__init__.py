"""Test fakes: upstream LLM providers, Google sign-in, and a real-port ASGI server."""

from .google import FakeGoogle
from .protocol import BEHAVIOURS, DEFAULT_KEYS, FakeStreamBroken
from .server import serve_asgi
from .upstream import create_fake_upstream, reset

__all__ = [
    "BEHAVIOURS",
    "DEFAULT_KEYS",
    "FakeGoogle",
    "FakeStreamBroken",
    "create_fake_upstream",
    "reset",
    "serve_asgi",
]
