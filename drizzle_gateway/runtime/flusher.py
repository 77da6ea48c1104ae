"""`Flusher`: writes once per event-loop turn what was queued during it.

Each connection's outbox asks to be flushed when a frame is queued on it; a
publish that reaches a thousand subscribers in one turn then costs each
socket one write, not one per frame. The flusher is shared by the
connections of one gateway (it lives on the `Hub`).

A reply answered in the step that read its request's frame (`direct`, set
by `runner.Runner` around that step) goes out at once, as the echo's
would. Replies answered later, by requests that ran together on a
later turn (pipelined, or from many connections), are queued and flushed
with the rest: eight pipelined replies then cost their socket one write.
"""

from __future__ import annotations

import asyncio
from typing import Protocol


class Flushable(Protocol):
    """What the flusher writes: a connection's outbox."""

    def flush(self) -> None:
        """Hand what is queued to the socket."""


class Flusher:
    """Writes the outboxes that received frames during this event-loop turn, once each."""

    def __init__(self) -> None:
        self.direct = False
        """Whether a reply may be written at once: True while a request's first step runs as its frame is read."""
        self._dirty: list[Flushable] = []
        self._loop: asyncio.AbstractEventLoop | None = None

    def schedule(self, outbox: Flushable) -> None:
        """Flush ``outbox`` at the end of this loop turn."""
        if not self._dirty or self._loop is None or not self._loop.is_running():
            # The turn's first (one loop lookup per turn, not per outbox), or a loop that stopped before
            # flushing left work behind: the running loop flushes it.
            loop = self._loop = asyncio.get_running_loop()
            loop.call_soon(self._after_this_turn, loop)
        self._dirty.append(outbox)

    def _after_this_turn(self, loop: asyncio.AbstractEventLoop) -> None:
        """Flush after what the turn that queued the first frame scheduled: tasks it started queue too."""
        loop.call_soon(self._flush)

    def _flush(self) -> None:
        dirty, self._dirty = self._dirty, []
        for outbox in dirty:
            outbox.flush()
