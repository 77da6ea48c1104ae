"""Deadlines of running requests: one timer for all of them, not one per request.

Every request of a gateway gets the same ``limits.action_timeout`` (fixed
once the gateway serves), so their deadlines fall in the order they started: the oldest running request
is always the next to expire. `Deadlines` keeps the running ones in start
order and one loop timer for the oldest; a request that finishes simply
leaves. That costs two dictionary operations per request where
``asyncio.timeout`` costs a timer handle, a context manager and a
reschedule.
"""

from __future__ import annotations

import asyncio
from typing import Any


class Deadlines:
    """Cancels the requests still running when their time is up.

    ``timeout`` is every request's time in seconds (None: no deadline).
    `expired` tells a cancelled request's own code whether the cancel was
    its deadline (answer TIMEOUT) or something else (shutdown, close).
    """

    def __init__(self, timeout: float | None) -> None:
        self.timeout = timeout
        self._running: dict[asyncio.Task[Any], float] = {}  # in start order: the first is the next to expire
        self._expired: set[asyncio.Task[Any]] = set()
        self._timer: asyncio.TimerHandle | None = None

    def watch(self, task: asyncio.Task[Any]) -> None:
        """Cancel ``task`` if it still runs ``timeout`` seconds from now; `forget` it when done."""
        if self.timeout is None:
            return
        deadline = task.get_loop().time() + self.timeout  # the task's loop: no running-loop lookup
        self._running[task] = deadline
        if self._timer is None or deadline < self._timer.when():
            self._arm(deadline)

    @property
    def watching(self) -> int:
        """How many tasks have a deadline now."""
        return len(self._running)

    def expired(self, task: asyncio.Task[Any] | None) -> bool:
        """True once, for a task its deadline cancelled."""
        if task in self._expired:
            self._expired.discard(task)
            return True
        return False

    def renew(self, task: asyncio.Task[Any]) -> None:
        """Give ``task`` a fresh ``timeout`` from now (a stream between two items)."""
        self._running.pop(task, None)
        self.watch(task)

    def pause(self, task: asyncio.Task[Any]) -> None:
        """No deadline for ``task`` until `renew`; one that already expired stays expired."""
        self._running.pop(task, None)

    def forget(self, task: asyncio.Task[Any]) -> None:
        """``task`` is done: no deadline for it any more."""
        self._running.pop(task, None)
        self._expired.discard(task)

    def _arm(self, deadline: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = asyncio.get_running_loop().call_at(deadline, self._expire)

    def _expire(self) -> None:
        self._timer = None
        now = asyncio.get_running_loop().time()
        due = []
        for task, deadline in self._running.items():
            if deadline > now:
                break
            due.append(task)
        for task in due:
            del self._running[task]
            self._expired.add(task)
            task.cancel()
        if self._running:
            self._arm(next(iter(self._running.values())))
