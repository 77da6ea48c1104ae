"""Pacing one connection's CPU: after a costly step, the event loop goes to the others for a while.

A request's steps (its frame's parse and checks, then each run of its
coroutine up to an ``await`` that waits) hold the event loop while they
run; nothing else is served meanwhile. Steps are cheap as a rule (tens of
microseconds), but a client chooses its input, and some inputs cost
milliseconds (a list of invalid items makes marshmallow raise and record an
error per item). A `Pacer` charges each request's step time to its
connection: once a request has held the loop for more than `COSTLY_STEP`,
the connection is paused for ``1 / share - 1`` times what it held (three
times, at the default ``Limits.cpu_share`` of a quarter) before its next
request starts, so that on average it gets at most ``share`` of the loop.
Cheap requests are never charged, so pipelined cheap requests keep their
batching; and a lone connection is only slowed down by costly requests.
"""

from __future__ import annotations

import asyncio
import time
import types
from collections.abc import Awaitable, Callable, Coroutine, Generator
from typing import Any, TypeVar, cast

T = TypeVar("T")

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

    def costly(self, spent: float) -> bool:
        """Charge ``spent`` (one uninterrupted step) if it is over `COSTLY_STEP`; whether it was."""
        if spent <= COSTLY_STEP:
            return False
        self.charge(spent)
        return True

    def paused(self) -> bool:
        """Whether the connection's next request must wait (`resume_at` is still ahead)."""
        if self.resume_at is NEVER:
            return False
        if self.resume_at > asyncio.get_running_loop().time():
            return True
        self.resume_at = NEVER  # the pause is over: the next check reads no clock
        return False

    def metered(self, coro: Coroutine[Any, Any, T], spent: float = 0.0) -> Awaitable[T]:
        """``coro`` to await, each of its steps timed; ``spent`` is what the request already held (its intake)."""
        return cast(Awaitable[T], _metered(coro, self, spent))  # a generator-based coroutine: awaitable


@types.coroutine
def _metered(coro: Coroutine[Any, Any, T], pacer: Pacer, spent: float) -> Generator[Any, Any, T]:
    """Drive ``coro`` as ``await`` would, adding up the time of its steps and charging a costly request.

    One generator (no object around it): most requests finish in their first step. A request
    closed unfinished (its task collected, perhaps after its loop stopped) is discarded: what its
    ``finally`` blocks run then is not charged.
    """
    clock = pacer.clock
    charged = 0.0
    value: Any = None
    thrown: BaseException | None = None
    while True:
        started = clock()
        try:
            yielded = coro.send(value) if thrown is None else coro.throw(thrown)
        except StopIteration as done:
            result: T = done.value  # what the coroutine returned: a T, as its type says
            return result
        finally:  # the step ended: it returned, raised or waits
            spent += clock() - started
            if spent > COSTLY_STEP and not isinstance(thrown, GeneratorExit):
                pacer.charge(spent - charged)
                charged = spent
        thrown = None
        try:
            value = yield yielded
        except BaseException as error:  # noqa: B036 -- passed on to the coroutine, as await would
            value, thrown = None, error
