"""`Selects`: watch an event loop's selector, one ``select`` a loop turn."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


class Selects:
    """Wraps a loop's selector: records (when, timeout) of every ``select``; the rest passes through."""

    def __init__(self, selector: Any) -> None:
        self._selector = selector
        self.calls: list[tuple[float, float | None]] = []

    def select(self, timeout: float | None = None) -> Any:
        self.calls.append((time.perf_counter(), timeout))
        return self._selector.select(timeout)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._selector, name)

    @property
    def count(self) -> int:
        """The loop's turns so far (its ``select`` calls)."""
        return len(self.calls)


@contextmanager
def watching(loop: Any) -> Iterator[Selects]:
    """Watch ``loop``'s selector (an asyncio selector loop) while the block runs."""
    recording = Selects(loop._selector)
    loop._selector = recording
    try:
        yield recording
    finally:
        loop._selector = recording._selector
