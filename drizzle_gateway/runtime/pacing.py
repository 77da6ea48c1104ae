"""Pacing one connection's CPU: after a costly step, the event loop goes to the others for a while.

A request's steps (its frame's parse and checks, then each run of its
coroutine up to an ``await`` that waits) hold the event loop while they
run; nothing else is served meanwhile. Steps are cheap as a rule (tens of
microseconds), but a client chooses its input, and some inputs cost
milliseconds (a list of invalid items makes marshmallow raise and record an
error per item). A `Pacer` is charged each request's step time (`runner.Runner`
times the steps): once a request has held the loop for more than `COSTLY_STEP`,
the connection is paused for ``1 / share - 1`` times what it held (three
times, at the default ``Limits.cpu_share`` of a quarter) before its next
request starts, so that on average it gets at most ``share`` of the loop.
Cheap requests are never charged, so pipelined cheap requests keep their
batching; and a lone connection is only slowed down by costly requests.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

NEVER = float("-inf")
"""A loop time before any other: one float shared by every connection that has not been paused."""

COSTLY_STEP = 0.002
"""Seconds of the loop a request may hold (all its steps so far) before its connection is paused for it."""


class Pacer:
    """One connection's pacing: when its next request may start (loop time), after the costly ones it ran."""

    __slots__ = ("_share", "clock", "resume_at")

    def __init__(self, share: float, clock: Callable[[], float] = time.perf_counter) -> None:
        self._share = share  # the limits' own float, kept rather than a float of its own per connection
        self.clock = clock
        """What steps are timed with (seconds): the wall clock, so a step the OS preempted counts as held."""
        self.resume_at = NEVER

    def charge(self, spent: float) -> None:
        """Pause the connection for ``spent`` seconds of loop time (times ``1 / share - 1``) from now or its pause."""
        now = asyncio.get_running_loop().time()
        self.resume_at = max(self.resume_at, now) + spent * (1 / self._share - 1)  # the others' time per second

    def costly(self, spent: float, charged: float = 0.0) -> bool:
        """Whether a request that held the loop ``spent`` seconds in all is over `COSTLY_STEP`; if so, charge it.

        ``charged`` is what its earlier steps were charged already: only the rest is charged now.
        """
        if spent <= COSTLY_STEP:
            return False
        self.charge(spent - charged)
        return True

    def paused(self) -> bool:
        """Whether the connection's next request must wait (`resume_at` is still ahead)."""
        if self.resume_at is NEVER:
            return False
        if self.resume_at > asyncio.get_running_loop().time():
            return True
        self.resume_at = NEVER  # the pause is over: the next check reads no clock
        return False
