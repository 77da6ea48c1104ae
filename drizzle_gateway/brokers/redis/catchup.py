"""What a Redis broker delivers of channels with history: each event once, in order, a `Gap` for those lost.

Every process hears a channel's numbered events on pub/sub, and keeps in
a `RecoveryLog` the position it delivered up to. An event after a hole
(this process missed some on pub/sub) waits while the missing ones are
read from the channel's stream; those the stream no longer holds (trimmed
or expired) are handed on as one `Gap`, so none is skipped silently.
After a reconnect, `CatchUp.catch_up` reads what each channel missed
while pub/sub was down.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from ...wire.dialect import decode
from ...wire.history import Page, Position, Retention
from ...wire.recovery import RecoveryLog, Step
from ..base import Listener
from . import streams

logger = logging.getLogger("drizzle_gateway")

ReadAfter = Callable[[str, Retention, Position], Awaitable[Page]]
"""Reads a channel's retained events after a position (the broker's ``history``)."""

ReadSince = Callable[[str, Retention, float], Awaitable[Page]]
"""Reads a channel's retained events Redis stamped after a moment (unix time)."""

Holes = dict[str, tuple[Position, Page]]
"""Per channel, a page read after a reconnect that has a hole: the position it was read after, the page."""


class CatchUp:
    """The channels with history a Redis broker listens to: where each stands, and how it catches up.

    ``listeners`` is the broker's (shared, not copied); ``read_after`` and
    ``read_since`` read the channel's stream.
    """

    def __init__(self, listeners: dict[str, Listener], read_after: ReadAfter, read_since: ReadSince) -> None:
        self._listeners = listeners
        self._read_after = read_after
        self._read_since = read_since
        self.log: RecoveryLog[None] = RecoveryLog()  # the last event delivered here, per channel
        self._retentions: dict[str, Retention] = {}
        self._unknown_since: dict[str, float] = {}  # subscribed while Redis was down: since when (unix time)

    def expect(self, channel: str, retention: Retention) -> None:
        """``channel`` is listened to, with history kept as ``retention`` says."""
        self._retentions[channel] = retention

    def unknown(self, channel: str) -> None:
        """Where ``channel`` stands could not be read: unless it stands somewhere, catch up from now on."""
        if self.log.position(channel) is None:
            self._unknown_since.setdefault(channel, time.time())

    def known(self, channel: str, position: Position) -> None:
        """``channel`` stands at ``position`` in Redis: start from there (unless delivered past it already)."""
        self._unknown_since.pop(channel, None)
        self.log.arrive(channel, position)

    def forget(self, channel: str) -> None:
        """``channel`` is no longer listened to."""
        self.log.forget(channel)
        self._retentions.pop(channel, None)
        self._unknown_since.pop(channel, None)

    def handle(self, channel: str, body: bytes) -> Awaitable[None] | None:
        """Deliver one numbered event heard on pub/sub; after a hole, an awaitable that reads it first."""
        listener = self._listeners.get(channel)
        if listener is None:
            return None
        try:
            position, payload = streams.parse_logged(body)
            data = decode(payload)
        except ValueError:
            logger.warning("ignored a malformed history message on redis channel %r", channel)
            return None
        verdict = self.log.arrive(channel, position, fill=channel in self._retentions)
        if verdict.step is Step.DROP:
            return None  # delivered already (read from the stream after a gap)
        if verdict.step is Step.FILL:  # the log still stands where it did before the hole
            last = self.log.position(channel)
            assert last is not None
            return self._fill_gap(channel, last, position, data)
        _hand_on(listener, channel, data, position)
        return None

    def _deliver(self, channel: str, data: Any, position: Position) -> None:
        """Hand one numbered event on, unless delivered already (the fan-out never makes the reader wait)."""
        listener = self._listeners.get(channel)
        if listener is not None and self.log.arrive(channel, position).step is Step.DELIVER:
            _hand_on(listener, channel, data, position)

    def _deliver_gap(self, channel: str, last: Position, end: int) -> None:
        """Hand the listener a `Gap`: offsets after ``last`` up to ``end`` are gone from the stream."""
        listener = self._listeners.get(channel)
        if listener is None:
            return
        gap = self.log.arrive(channel, Position(last.epoch, end), lost=True).gap
        if gap is None:
            return  # delivered already, or of an epoch this process stands nowhere in
        logger.warning("channel %s: offsets %d-%d are no longer in redis; subscribers are told", channel,
                       gap.first, gap.last)
        _hand_on(listener, channel, gap, gap.position)

    async def _fill_gap(self, channel: str, last: Position, position: Position, data: Any) -> None:
        """Deliver the events after ``last`` and before ``position`` (read from the stream), then ``data``.

        ``position`` is an event heard on pub/sub, so every later one will be
        heard there too, in order: the stream is read for the offsets before
        it only, and only those it no longer holds (trimmed or expired) are
        announced lost, as one `Gap` in their place. When the stream cannot
        be read, nothing is skipped: the error breaks the subscriber
        connection, and the reconnect's `catch_up` reads the gap again.
        """
        found = await self._read_missed(channel, last)
        self._deliver_found(channel, last, found, before=position)
        self._deliver(channel, data, position)

    async def _read_missed(self, channel: str, last: Position) -> Page:
        """The channel's retained events after ``last``; ConnectionError (the reader reconnects) when unreadable."""
        try:
            return await self._read_after(channel, self._retentions[channel], last)
        except Exception as exc:
            raise ConnectionError(f"could not read the missed events of {channel} from redis ({exc})") from exc

    def _deliver_found(self, channel: str, last: Position, found: Page, before: Position | None = None) -> None:
        """Deliver the events of ``found`` this process has not delivered, after a `Gap` for those it lacks.

        With ``before`` (an event heard on pub/sub, of the page's epoch), only
        the offsets before it: pub/sub carries it and every later one.
        """
        end: int | None = None
        if before is not None and before.epoch == found.position.epoch:
            end = before.offset - 1
        if not found.complete and found.position.epoch == last.epoch:
            lacking = found.events[0].offset - 1 if found.events else found.position.offset
            self._deliver_gap(channel, last, lacking if end is None else min(lacking, end))
        for logged in found.events:
            if end is not None and logged.offset > end:
                break
            self._deliver(channel, logged.data, Position(found.position.epoch, logged.offset))

    async def catch_up(self) -> Holes:
        """After a reconnect: deliver what each channel with history missed while pub/sub was down.

        The reads come after the channels are re-subscribed, so an event
        numbered since is on pub/sub too: a page with a hole in the same
        epoch is returned, not delivered, for the reader to hand on
        (`deliver_holes`) once pub/sub has delivered what it holds (a flush
        of queued publishes can outrun the history meanwhile); what is
        still missing then is gone. A channel first subscribed while Redis
        was down has no position to start from: it gets the retained
        events Redis stamped after that moment (Redis's clock against this
        host's).
        """
        holes: Holes = {}
        for channel, last in self.log.positions().items():
            if channel in self._retentions and channel in self._listeners:
                found = await self._read_missed(channel, last)
                if found.complete or found.position.epoch != last.epoch:
                    self._deliver_found(channel, last, found)
                else:
                    holes[channel] = (last, found)
        for channel, since in list(self._unknown_since.items()):
            retention = self._retentions.get(channel)
            if retention is None or channel not in self._listeners:
                continue
            try:
                found = await self._read_since(channel, retention, since)
            except Exception as exc:
                logger.warning("could not read the events of %s from redis (%s)", channel, exc)
                continue
            del self._unknown_since[channel]
            for logged in found.events:
                self._deliver(channel, logged.data, Position(found.position.epoch, logged.offset))
            self.log.start(channel, found.position)
        return holes

    def deliver_holes(self, holes: Holes) -> None:
        """Hand on the pages `catch_up` returned, now that pub/sub delivered what it held: the rest is gone."""
        for channel, (last, found) in holes.items():
            self._deliver_found(channel, last, found)


def _hand_on(listener: Listener, channel: str, data: Any, position: Position) -> None:
    """Give the local fan-out one numbered event (or `Gap`); it never makes the reader wait (see `Reader`)."""
    try:
        listener(channel, data, position)
    except Exception:
        logger.exception("delivering a message from redis on %s failed", channel)
