"""The heartbeat: one timer pings every connection, not a task per connection.

Every connection of a gateway is pinged every ``limits.ping_interval``
seconds and must answer within ``limits.ping_timeout``. As with
`deadlines.Deadlines`, the same interval for all keeps their next pings in
the order they joined, so one loop timer, armed for the earliest, serves
them all: a connection costs two dictionary entries instead of a task, its
coroutine, a sleeping future and a timer handle (about 1.5 KiB, more than
a tenth of an idle connection).
"""

from __future__ import annotations

import asyncio
import math
from typing import Protocol

SLACK = 0.05
"""Seconds early a ping or check may run, so that members due close together share one timer callback."""


class Beating(Protocol):
    """What the heartbeat asks of a member."""

    def send_heartbeat(self) -> bool:
        """Send a ping (its answer not yet seen); False when the connection is gone."""

    def heartbeat_answered(self) -> bool:
        """Whether the last ping counts as answered."""

    def heartbeat_missed(self) -> None:
        """The last ping went unanswered for the timeout: close the connection."""


class Heartbeat:
    """Pings its members every ``interval`` seconds and checks each answer ``timeout`` seconds later.

    A member is first pinged ``interval`` seconds after `add`; ``timeout``
    is at most ``interval`` (0: pings are not checked).
    """

    def __init__(self, interval: float, timeout: float) -> None:
        self.interval = interval
        self.timeout = min(timeout, interval)
        self._slack = min(SLACK, interval / 4)  # below the interval: a member pinged now is never ripe again at once
        self._pings: dict[Beating, float] = {}  # member -> when its next ping is due, in that order
        self._checks: dict[Beating, float] = {}  # member -> when its last ping's answer is checked, in that order
        self._timer: asyncio.TimerHandle | None = None
        self._last_due = -math.inf  # the due time of the entry put last into `_pings` (the latest of them)

    def __len__(self) -> int:
        return len(self._pings)

    def add(self, member: Beating) -> None:
        """Ping ``member`` from ``interval`` seconds on (until `discard`)."""
        due = asyncio.get_running_loop().time() + self.interval
        last = self._last_due
        if 0.0 <= due - last < self._slack / 4:
            due = last  # just after the last entry, due no later: one float for both (a storm of connections)
        self._pings[member] = self._last_due = due
        if self._timer is None:
            self._arm(due)

    def discard(self, member: Beating) -> None:
        """Ping ``member`` no more."""
        self._pings.pop(member, None)
        self._checks.pop(member, None)
        if not self._pings and self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _arm(self, when: float) -> None:
        self._timer = asyncio.get_running_loop().call_at(when, self._beat)

    def _beat(self) -> None:
        self._timer = None
        now = asyncio.get_running_loop().time()
        ripe = now + self._slack
        checks = self._checks
        while checks:
            member, due = next(iter(checks.items()))
            if due > ripe:
                break
            del checks[member]
            if not member.heartbeat_answered():
                self.discard(member)
                member.heartbeat_missed()
        pings = self._pings
        next_ping, check_at = now + self.interval, now + self.timeout  # shared by every member pinged now
        while pings:
            member, due = next(iter(pings.items()))
            if due > ripe:
                break
            del pings[member]
            if not member.send_heartbeat():
                checks.pop(member, None)
                continue
            pings[member] = self._last_due = next_ping  # at the end: every other member is due earlier
            if self.timeout > 0:
                checks[member] = check_at
        earliest = min((next(iter(table.values())) for table in (checks, pings) if table), default=None)
        if earliest is not None:
            self._arm(earliest)
