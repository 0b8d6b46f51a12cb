"""Natural batching: calls that arrive while one database round trip is under way go together in
the next one. One caller alone goes at once (no added latency at one connection); under load,
many admissions (or settles) share one statement, one transaction and one commit, which is what
keeps the database's CPU per relayed call small."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

In = TypeVar("In")
Out = TypeVar("Out")


class Batcher(Generic[In, Out]):
    """`await batcher.submit(item)` -> that item's result from `run(items)`, which answers a
    whole batch in order. An exception from `run` reaches every caller of that batch."""

    def __init__(
        self,
        run: Callable[[list[In]], Awaitable[Sequence[Out]]],
        *,
        orphan: Callable[[Out], None] | None = None,
        max_size: int = 256,
    ):
        self._run = run
        self._orphan = orphan  # gets the results whose caller was cancelled while waiting
        self.max_size = max_size
        self._queue: list[tuple[In, asyncio.Future[Out]]] = []
        self._task: asyncio.Task[None] | None = None  # held: the loop keeps only weak references

    async def submit(self, item: In) -> Out:
        future: asyncio.Future[Out] = asyncio.get_running_loop().create_future()
        self._queue.append((item, future))
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        try:
            while self._queue:
                batch, self._queue = self._queue[: self.max_size], self._queue[self.max_size :]
                try:
                    results = await self._run([item for item, _ in batch])
                except BaseException as e:  # each caller gets the failure of its own batch
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(e)
                    if not isinstance(e, Exception):
                        raise
                    continue
                for (_, future), result in zip(batch, results, strict=True):
                    if not future.done():
                        future.set_result(result)
                    elif self._orphan is not None:  # its caller was cancelled meanwhile
                        self._orphan(result)
        finally:
            self._task = None
