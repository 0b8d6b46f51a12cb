"""The session's fake-provider server, in a module of its own so that `conftest` (loaded by
pytest) and test modules (which import `tests.conftest`) share one instance."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.types import Receive, Scope, Send


class _Dispatch:
    """The session's fake-provider server: each test mounts its own fresh fake app here."""

    def __init__(self) -> None:
        self.app: Starlette | None = None
        self.url = ""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":  # the per-test apps need no start-up
            await receive()
            await send({"type": "lifespan.startup.complete"})
            await receive()
            await send({"type": "lifespan.shutdown.complete"})
            return
        assert self.app is not None, "no fake upstream mounted for this test"
        await self.app(scope, receive, send)


FAKES = _Dispatch()
