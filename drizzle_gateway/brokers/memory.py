"""The embedded broker: one process, no I/O, delivery in publish order."""

from __future__ import annotations

import time
from typing import Any

from ..history import Clock, Page, Position, Retention, Ring, new_epoch
from .base import Listener


class MemoryBroker:
    """In-process fan-out; the default when a Gateway is given no broker.

    Channels with history keep a bounded `Ring` each, made by their first
    publish; one epoch serves them all and lives as long as the broker (its
    histories are lost only with it). Reading a channel nobody published to
    makes no ring, so clients cannot grow the broker by naming channels.
    ``clock`` times ``history_ttl`` (tests inject one).
    """

    def __init__(self, clock: Clock = time.monotonic) -> None:
        self._listeners: dict[str, Listener] = {}
        self._rings: dict[str, Ring] = {}
        self._clock = clock
        self._epoch = new_epoch()

    async def publish(self, channel: str, data: Any) -> None:
        """Hand ``data`` to the channel's listener at once; wait while its readers are congested."""
        listener = self._listeners.get(channel)
        if listener is not None:
            congested = listener(channel, data)
            if congested is not None:
                await congested

    async def publish_logged(self, channel: str, data: Any, retention: Retention) -> int | None:
        """Append ``data`` to the channel's ring, then hand it to the listener with its position."""
        ring = self._rings.get(channel)
        if ring is None:
            ring = self._rings[channel] = Ring(retention, self._clock, self._epoch)
        offset = ring.append(data)
        listener = self._listeners.get(channel)
        if listener is not None:
            congested = listener(channel, data, Position(ring.epoch, offset))
            if congested is not None:
                await congested
        return offset

    async def history(self, channel: str, retention: Retention, since: Position | None = None,
                      limit: int | None = None) -> Page:
        """Read the channel's ring (see `Ring.read`)."""
        return self._ring(channel, retention).read(since, limit)

    async def position(self, channel: str, retention: Retention) -> Position:
        """The channel's epoch and latest offset."""
        return self._ring(channel, retention).position

    def _ring(self, channel: str, retention: Retention) -> Ring:
        """The channel's ring, or an empty one (not kept) when nothing was published to it."""
        return self._rings.get(channel) or Ring(retention, self._clock, self._epoch)

    async def subscribe(self, channel: str, listener: Listener) -> None:
        """Register the process's listener for ``channel``."""
        self._listeners[channel] = listener

    async def unsubscribe(self, channel: str) -> None:
        """Forget ``channel``."""
        self._listeners.pop(channel, None)

    async def close(self) -> None:
        """Forget every channel (histories are kept: closing is not a restart)."""
        self._listeners.clear()
