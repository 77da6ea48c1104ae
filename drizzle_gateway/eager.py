"""Start a coroutine at once; make it a task only if it has to wait.

Most actions finish without awaiting anything that blocks. Running their
first step inline saves a task, a trip through the event loop and the
latency of both; a coroutine that does wait is handed to a task from the
point where it stopped (what Python 3.12's eager tasks do).
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Generator
from typing import Any


class _Resumed:
    """Continues a coroutine whose first step already ran and yielded ``pending``."""

    __slots__ = ("coro", "pending")

    def __init__(self, coro: Coroutine, pending: Any) -> None:
        self.coro = coro
        self.pending = pending

    def __await__(self) -> Generator[Any, Any, Any]:
        coro, pending = self.coro, self.pending
        self.pending = None
        while True:
            try:
                sent = yield pending
            except BaseException as exc:  # cancellation and close() reach the coroutine as they would in a task
                try:
                    pending = coro.throw(exc)
                except StopIteration as stop:
                    return stop.value
            else:
                try:
                    pending = coro.send(sent)
                except StopIteration as stop:
                    return stop.value


async def _finish(resumed: _Resumed) -> Any:
    return await resumed


def start(coro: Coroutine) -> asyncio.Task | None:
    """Run ``coro`` up to its first wait; None if it finished, else the task that finishes it.

    Exceptions of the first step propagate to the caller.
    """
    try:
        pending = coro.send(None)
    except StopIteration:
        return None
    return asyncio.ensure_future(_finish(_Resumed(coro, pending)))
