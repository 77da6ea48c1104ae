"""The embedded broker: one process, no I/O, delivery in publish order."""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable
from typing import Any

from ..wire.dialect import encode
from ..wire.history import Clock, Page, Position, Retention, new_epoch
from .base import IDEMPOTENCY_KEYS, IDEMPOTENCY_WINDOW, Listener, Receipt
from .idempotency import SeenKeys
from .memory_presence import MemoryPresence
from .ring import Ring

logger = logging.getLogger("drizzle_gateway")

HISTORY_CHANNELS = 10_000
"""Channels whose history one memory broker keeps, by default."""

HISTORY_BYTES = 64 * 1024 * 1024
"""Bytes of retained events (their JSON) one memory broker keeps, by default."""


class MemoryBroker:
    """In-process fan-out; the default when a Gateway is given no broker.

    Channels with history keep a bounded `Ring` each, made by their first
    publish. Reading a channel nobody published to makes no ring, so
    clients cannot grow the broker by naming channels. The broker keeps
    the history of at most ``history_channels`` channels and
    ``history_bytes`` of events (their JSON) in all: beyond either, the
    channels published to least recently are forgotten (when one channel
    alone weighs more, its oldest events are). A ring nothing was published
    to for its ``history_ttl`` (all its events expired) is forgotten too.

    New rings take the broker's current epoch, which changes whenever a
    channel's history is forgotten: a channel that comes back numbers its
    events in a new epoch, so a client recovering from before gets
    ``recovered: false``, never a silent skip. ``clock`` times
    ``history_ttl`` and the idempotency window (tests inject one).

    A publish with an idempotency key (`publish_once`) is delivered unless
    the key was published on the channel in the last
    ``idempotency_window`` seconds; the broker remembers at most
    ``idempotency_keys`` keys (see `SeenKeys`).
    """

    def __init__(self, clock: Clock = time.monotonic, *, history_channels: int | None = HISTORY_CHANNELS,
                 history_bytes: int | None = HISTORY_BYTES, idempotency_window: float = IDEMPOTENCY_WINDOW,
                 idempotency_keys: int = IDEMPOTENCY_KEYS) -> None:
        for name, value in (("history_channels", history_channels), ("history_bytes", history_bytes)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ValueError(f"{name} must be a positive integer or None (no bound), got {value!r}")
        self.history_channels = history_channels
        self.history_bytes = history_bytes
        self._listeners: dict[str, Listener] = {}
        self._rings: OrderedDict[str, Ring] = OrderedDict()  # least recently published first
        self._bytes = 0
        self._clock = clock
        self._epoch = new_epoch()
        self._swept = clock()
        self.seen_keys = SeenKeys(idempotency_window, idempotency_keys, clock)
        self._presence = MemoryPresence()

    @property
    def presence(self) -> MemoryPresence:
        """Who is on each channel (see `MemoryPresence`)."""
        return self._presence

    @property
    def history_weight(self) -> tuple[int, int]:
        """The channels whose history is kept, and the bytes of their events."""
        return len(self._rings), self._bytes

    async def publish(self, channel: str, data: Any) -> None:
        """Hand ``data`` to the channel's listener at once; wait while its readers are congested."""
        listener = self._listeners.get(channel)
        if listener is not None:
            congested = listener(channel, data)
            if congested is not None:
                await congested

    async def publish_once(self, channel: str, data: Any, key: str, retention: Retention | None) -> Receipt:
        """`publish` (`publish_logged` with ``retention``) unless ``key`` was published on ``channel`` in the window."""
        seen = self.seen_keys.seen(channel, key)
        if seen is not None:
            return seen
        if retention is None:
            receipt = Receipt()
            self.seen_keys.remember(channel, key, receipt)
            await self.publish(channel, data)
            return receipt
        position, congested = self._append(channel, data, retention)
        receipt = Receipt(position)
        self.seen_keys.remember(channel, key, receipt)  # before waiting: a repeat meanwhile is a duplicate
        if congested is not None:
            await congested
        return receipt

    async def publish_logged(self, channel: str, data: Any, retention: Retention) -> int | None:
        """Append ``data`` to the channel's ring, then hand it to the listener with its position."""
        position, congested = self._append(channel, data, retention)
        if congested is not None:
            await congested
        return position.offset

    def _append(self, channel: str, data: Any, retention: Retention) -> tuple[Position, Awaitable[None] | None]:
        """Append ``data`` to the channel's ring and hand it to the listener; its position, and the congestion."""
        self._sweep()
        ring = self._rings.get(channel)
        if ring is None:
            ring = self._rings[channel] = Ring(retention, self._clock, self._epoch)
        else:
            self._rings.move_to_end(channel)
        before = ring.bytes
        offset = ring.append(data, len(encode(data)))
        self._bytes += ring.bytes - before
        self._bound(ring)
        position = Position(ring.epoch, offset)
        listener = self._listeners.get(channel)
        return position, listener(channel, data, position) if listener is not None else None

    async def history(self, channel: str, retention: Retention, since: Position | None = None,
                      limit: int | None = None) -> Page:
        """Read the channel's ring (see `Ring.read`)."""
        ring = self._ring(channel, retention)
        before = ring.bytes
        page = ring.read(since, limit)
        if channel in self._rings:
            self._bytes += ring.bytes - before  # read() let expired events go
        return page

    async def position(self, channel: str, retention: Retention) -> Position:
        """The channel's epoch and latest offset."""
        return self._ring(channel, retention).position

    def _ring(self, channel: str, retention: Retention) -> Ring:
        """The channel's ring, or an empty one (not kept) when nothing was published to it."""
        return self._rings.get(channel) or Ring(retention, self._clock, self._epoch)

    def _bound(self, newest: Ring) -> None:
        """Forget the least recently published channels while over a bound (``newest`` last)."""
        channels = self.history_channels if self.history_channels is not None else float("inf")
        most = self.history_bytes if self.history_bytes is not None else float("inf")
        while len(self._rings) > channels or (self._bytes > most and len(self._rings) > 1):
            self._forget(next(iter(self._rings)))
        while self._bytes > most and newest.drop_oldest():
            self._bytes = newest.bytes

    def _sweep(self) -> None:
        """Forget the rings idle past their ``history_ttl``; at most once a second."""
        now = self._clock()
        if now - self._swept < 1.0:
            return
        self._swept = now
        for channel in [channel for channel, ring in self._rings.items() if ring.idle()]:
            self._forget(channel)

    def _forget(self, channel: str) -> None:
        """Drop a channel's history; the epoch changes, so no later ring reuses the numbers it gave."""
        ring = self._rings.pop(channel)
        self._bytes -= ring.bytes
        if ring.epoch == self._epoch:
            self._epoch = new_epoch()
            logger.debug("memory broker: history of %s forgotten; new epoch %s", channel, self._epoch)

    async def subscribe(self, channel: str, listener: Listener) -> None:
        """Register the process's listener for ``channel``."""
        self._listeners[channel] = listener

    async def unsubscribe(self, channel: str) -> None:
        """Forget ``channel``."""
        self._listeners.pop(channel, None)

    async def close(self) -> None:
        """Forget every channel (histories are kept: closing is not a restart)."""
        self._listeners.clear()
