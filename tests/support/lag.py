"""How late the event loop ran timers while a timing test ran, so its tolerance can allow for it.

A test that asserts when a timer fired fails spuriously when something else
(another test's process, a busy neighbour) stalls the loop: the timer fires
late through no fault of the code. `LoopLag` measures that lateness with a
probe timer of its own; a timing assertion then allows its fixed tolerance
plus the worst lateness seen, and keeps failing wherever the loop was steady.
"""

from __future__ import annotations

import asyncio
from types import TracebackType


class LoopLag:
    """``async with LoopLag() as lag:`` ... ``lag.worst``: the most a probe timer fired late, in seconds."""

    def __init__(self, every: float = 0.005) -> None:
        self.every = every
        self.worst = 0.0
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> LoopLag:
        self._task = asyncio.create_task(self._probe())
        return self

    async def __aexit__(self, kind: type[BaseException] | None, error: BaseException | None,
                        trace: TracebackType | None) -> None:
        assert self._task is not None
        self._task.cancel()
        try:
            await self._task
        except asyncio.CancelledError:
            pass

    async def _probe(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            due = loop.time() + self.every
            await asyncio.sleep(self.every)
            self.worst = max(self.worst, loop.time() - due)
