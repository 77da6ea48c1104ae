"""`Ring`: the bounded history the memory broker keeps for one channel."""

from __future__ import annotations

import time
from collections import deque
from typing import Any

from ..wire.history import Clock, Logged, Page, Position, Retention, new_epoch


class Ring:
    """The last ``retention.size`` events of one channel, each kept ``retention.ttl`` seconds.

    ``bytes`` is the weight of the events it holds, as the sizes `append` was given.
    """

    def __init__(self, retention: Retention, clock: Clock = time.monotonic, epoch: str | None = None) -> None:
        self.retention = retention
        self.epoch = epoch or new_epoch()
        self.offset = 0
        self.bytes = 0
        self._clock = clock
        self.updated = clock()
        self._events: deque[tuple[float, Logged, int]] = deque()

    @property
    def position(self) -> Position:
        """The channel's epoch and latest offset."""
        return Position(self.epoch, self.offset)

    def append(self, data: Any, size: int = 0) -> int:
        """Keep ``data`` (weighing ``size``) as the next event; its offset."""
        if len(self._events) >= self.retention.size:
            self.bytes -= self._events.popleft()[2]
        self.offset += 1
        self.updated = self._clock()
        self._events.append((self.updated, Logged(self.offset, data), size))
        self.bytes += size
        return self.offset

    def drop_oldest(self) -> bool:
        """Forget the oldest event kept (it counts as lost to `read`); False when none was left."""
        if not self._events:
            return False
        self.bytes -= self._events.popleft()[2]
        return True

    def idle(self) -> bool:
        """True when nothing was published for ``retention.ttl`` seconds: every event has expired."""
        ttl = self.retention.ttl
        return ttl is not None and self._clock() - self.updated >= ttl

    def _expire(self) -> None:
        ttl = self.retention.ttl
        if ttl is None:
            return
        oldest = self._clock() - ttl
        while self._events and self._events[0][0] <= oldest:
            self.bytes -= self._events.popleft()[2]

    def read(self, since: Position | None = None, limit: int | None = None) -> Page:
        """Events after ``since`` (the first ``limit``), or the last ``limit`` retained without ``since``."""
        self._expire()
        events = [logged for _, logged, _ in self._events]
        if since is None:
            return Page(self.position, events[-limit:] if limit else events)
        if since.epoch != self.epoch or since.offset > self.offset:
            return Page(self.position, events[-limit:] if limit else events, complete=False)
        first = events[0].offset if events else self.offset + 1
        complete = since.offset + 1 >= first
        after = [logged for logged in events if logged.offset > since.offset]
        return Page(self.position, after[:limit] if limit else after, complete)
