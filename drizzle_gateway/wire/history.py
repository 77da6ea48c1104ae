"""Channel history: offsets, epochs and the bounded ring the memory broker keeps.

A channel declared with history numbers its events 1, 2, 3... (the
*offset*, monotonic and without gaps) within an *epoch*, a string that
changes whenever the numbering starts again (its history was lost). A
client that remembers ``(epoch, offset)`` can ask for what it missed.
"""

from __future__ import annotations

import secrets
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

Clock = Callable[[], float]
"""Seconds from an arbitrary origin (``time.monotonic`` unless a test injects another)."""


@dataclass(frozen=True)
class Retention:
    """How much history a topic keeps: the last ``size`` events, each for ``ttl`` seconds (None: no expiry)."""

    size: int
    ttl: float | None = None

    def __post_init__(self) -> None:
        if self.size < 1:
            raise ValueError("history must keep at least one event")
        if self.ttl is not None and self.ttl <= 0:
            raise ValueError("history_ttl must be positive")


@dataclass(frozen=True)
class Position:
    """Where a channel stands: its ``epoch`` and the ``offset`` of its latest event (0: none yet)."""

    epoch: str
    offset: int


@dataclass(frozen=True)
class Logged:
    """One retained event: its ``offset`` and the dumped ``data`` every subscriber gets (before ``fields``)."""

    offset: int
    data: Any


@dataclass(frozen=True)
class Page:
    """A slice of a channel's history.

    ``events`` follow ``since`` in order; ``complete`` is False when some
    events after ``since`` are gone (expired, pushed out of the ring, or
    ``since`` belongs to another epoch), so the reader cannot recover.
    """

    position: Position
    events: list[Logged] = field(default_factory=list)
    complete: bool = True


def new_epoch() -> str:
    """A fresh epoch: short, random, never reused in practice."""
    return secrets.token_hex(4)


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
