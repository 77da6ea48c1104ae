"""Local fan-out: which connections of this process hear which channel.

Subscribers of a channel are grouped by view (their dialect and field
selection); a message is cut to (or dumped for) each selection and
encoded once per view, then the same frame is written to every
connection in the group. When some of them are congested, delivery hands
back an awaitable that the broker awaits before it delivers more: a
publisher is slowed to what its readers take, but no one reader holds it
for longer than ``limits.publish_wait`` (see `Outbox`).

Channels with history arrive numbered: the fan-out drops an offset it has
delivered already, announces offsets that will never come (a gap notice,
where they would have been), and a subscriber that asks for what it
missed is replayed from the broker's history until it meets the live events.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Generator, Hashable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, cast

from ..schema.publication import payload_of
from ..schema.selection import Selection
from ..wire.frame import Frame
from ..wire.history import Position, Retention
from ..wire.recovery import Arrival, Gap, RecoveryLog, Step

if TYPE_CHECKING:
    from ..brokers import Broker, HistoryBroker
    from ..wire.dialect import Dialect
    from .metrics import Increment

logger = logging.getLogger("drizzle_gateway")


class Subscriber(Protocol):
    """What the fan-out needs of a connection (a `Session` provides it)."""

    protocol: Dialect

    def send_frame(self, frame: str | Frame) -> bool:  # pragma: no cover - interface
        """Queue one encoded frame for the peer; True when its producer should wait (see `released`)."""

    async def drained(self) -> None:  # pragma: no cover - interface
        """Wait until the peer is no longer congested (or is gone)."""

    async def released(self) -> None:  # pragma: no cover - interface
        """Wait until the peer no longer holds publishers: drained, gone, or its hold spent."""


class View:
    """How a group of subscribers wants a channel: dialect + field selection."""

    __slots__ = ("protocol", "selection", "key")

    def __init__(self, protocol: Dialect, selection: Selection | None) -> None:
        self.protocol = protocol
        self.selection = selection
        self.key: Hashable = (id(protocol), selection.fields if selection else None)

    def frame(self, channel: str, message: Any, offset: int | None = None, epoch: str | None = None) -> str:
        """The event frame these subscribers receive for ``message`` (a `Published` or dumped data).

        On channels with history it carries its ``offset``, and the
        channel's new ``epoch`` on the first event after the history was lost.
        """
        data = payload_of(message, self.selection)
        if offset is None:
            return self.protocol.event(channel, data)
        if epoch is None:
            return self.protocol.event(channel, data, offset)
        return self.protocol.event(channel, data, offset, epoch)

    def gap_frame(self, channel: str, gap: Gap) -> str:
        """The gap notice these subscribers receive where the events ``gap`` covers would have been."""
        return self.protocol.gap(channel, gap.epoch, gap.first, gap.last)


@dataclass(frozen=True)
class Joined:
    """How a subscription to a channel with history began.

    ``position`` is the channel's epoch and the offset of the last event
    before the subscriber's first live one (None while the broker's store
    is unreachable: the first live event then carries the epoch); ``recovered`` says whether the
    events missed since the subscriber's earlier position were replayed
    (None when it gave none).
    """

    position: Position | None
    recovered: bool | None = None


_Group = tuple[View, set[Subscriber]]
"""One view of a channel and the subscribers that share it."""


class Fanout:
    """The channels this process listens to, and who listens to each."""

    def __init__(self, broker: Broker, counter: Callable[[str], Increment] | None = None) -> None:
        """``counter``, if given, binds a channel's deliveries counter (once per channel joined)."""
        self._broker = broker
        self._counter = counter
        self._counted: dict[str, Increment] = {}  # per channel listened to: its deliveries counter
        self._channels: dict[str, dict[Hashable, _Group]] = {}
        self._joining: dict[str, asyncio.Future[None]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        # channels with history: the last event delivered here, and subscribers still catching up
        self._log: RecoveryLog[Subscriber] = RecoveryLog()
        self.delivering = 0.0
        """Seconds spent handing events to local subscribers so far (`deliver`): see `charged_clock`."""

    def subscribers(self, channel: str) -> int:
        """How many local connections listen to ``channel``."""
        return sum(len(members) for _, members in self._channels.get(channel, {}).values())

    async def add(self, subscriber: Subscriber, channel: str, view: View) -> None:
        """Add ``subscriber`` to ``channel``; the broker listens before this returns."""
        groups = await self._join(channel)
        _, members = groups.setdefault(view.key, (view, set()))
        members.add(subscriber)

    async def _join(self, channel: str, retention: Retention | None = None) -> dict[Hashable, _Group]:
        """The channel's view groups, once the broker listens (and, with history, its position is known)."""
        groups = self._channels.get(channel)
        if groups is None:
            groups = self._channels[channel] = {}
            if self._counter is not None:
                self._counted[channel] = self._counter(channel)
            joined = self._joining[channel] = asyncio.get_running_loop().create_future()
            try:
                await self._broker.subscribe(channel, self.deliver)
                if retention is not None:
                    await self._learn_position(channel, retention)
            except BaseException:
                self._channels.pop(channel, None)
                self._counted.pop(channel, None)
                self._log.forget(channel)
                raise
            finally:
                self._joining.pop(channel, None)
                joined.set_result(None)
        elif channel in self._joining:
            await asyncio.shield(self._joining[channel])
            groups = self._channels.setdefault(channel, {})
        return groups

    @property
    def _history_broker(self) -> HistoryBroker:
        return cast("HistoryBroker", self._broker)  # the gateway checked that it keeps history

    async def _learn_position(self, channel: str, retention: Retention) -> None:
        """Where ``channel`` stands; unknown while the broker cannot tell (its store is down)."""
        try:
            position = await self._history_broker.position(channel, retention)
        except Exception as exc:  # noqa: BLE001 - whatever the store raised, the subscription goes on
            logger.warning("channel %s: its position is unknown for now (%s: %s)", channel, type(exc).__name__, exc)
            return
        self._log.arrive(channel, position)  # reached unless this process delivered it already

    async def add_logged(self, subscriber: Subscriber, channel: str, view: View, retention: Retention,
                         since: Position | None = None) -> Joined:
        """Add ``subscriber`` to a channel with history; with ``since``, replay what it missed first.

        The replay and the live events meet without a gap or a duplicate:
        the subscriber skips live events until the replay has caught up
        with what this process delivered, then joins synchronously.
        """
        groups = await self._join(channel, retention)
        _, members = groups.setdefault(view.key, (view, set()))
        members.add(subscriber)
        if since is None:
            return Joined(self._log.position(channel))
        self._log.hold(channel, subscriber)  # live events wait while the replay runs
        try:
            sent, recovered = await self._replay(subscriber, channel, view, retention, since)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - the store is unreachable: live anyway, not recovered
            logger.warning("channel %s: could not read its history (%s: %s)", channel, type(exc).__name__, exc)
            sent, recovered = since.offset, False
        finally:
            self._log.release(channel, subscriber)
        local = self._log.position(channel)
        if local is None:  # unknown: the store is unreachable (or the subscriber left, and the channel with it)
            return Joined(None, False)
        if not recovered:
            return Joined(local, False)
        if sent > local.offset:  # this process has not delivered the last replayed events yet
            self._log.hold(channel, subscriber, sent)
        return Joined(Position(local.epoch, max(sent, local.offset)), True)

    async def _replay(self, subscriber: Subscriber, channel: str, view: View, retention: Retention,
                      since: Position) -> tuple[int, bool]:
        """Send the events after ``since`` until this process's live position; (last offset sent, recovered)."""
        page = await self._history_broker.history(channel, retention, since)
        sent = since.offset
        while page.complete and page.position.epoch == since.epoch:
            congested = False
            for logged in page.events:
                if logged.offset > sent:
                    congested = subscriber.send_frame(view.frame(channel, logged.data, logged.offset)) or congested
                    sent = logged.offset
            if congested:
                await subscriber.drained()
            local = self._log.position(channel)
            if local is None or local.epoch != since.epoch or local.offset <= sent:
                return sent, local is not None and local.epoch == since.epoch
            page = await self._history_broker.history(channel, retention, Position(since.epoch, sent))
        return sent, False

    def keep_only(self, subscriber: Subscriber, channel: str, view: View) -> None:
        """Leave every other view of ``channel`` that ``subscriber`` is in (after joining it with ``view``)."""
        groups = self._channels.get(channel)
        if not groups:
            return
        for key, (_, members) in list(groups.items()):
            if key != view.key:
                members.discard(subscriber)
                if not members:
                    del groups[key]

    def discard(self, subscriber: Subscriber, channel: str) -> None:
        """Remove ``subscriber`` from ``channel``; the broker stops after the last one."""
        groups = self._channels.get(channel)
        if not groups:
            return
        for key, (_, members) in list(groups.items()):
            members.discard(subscriber)
            if not members:
                del groups[key]
        self._log.release(channel, subscriber)
        if not groups:
            del self._channels[channel]
            self._counted.pop(channel, None)
            self._log.forget(channel)
            task = asyncio.ensure_future(self._leave(channel))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _leave(self, channel: str) -> None:
        if channel in self._channels:  # someone subscribed again meanwhile
            return
        try:
            await self._broker.unsubscribe(channel)
        except Exception:
            logger.exception("broker failed to unsubscribe from %s", channel)

    def charged_clock(self) -> float:
        """The wall clock (seconds) less the time spent delivering: what a connection's pacing charges it.

        Handing a publish to a channel's subscribers is not the publisher's
        CPU to pace (`pacing`): it is bounded by the publish rate
        (``limits.rate``) and the channel's subscribers, and costs least when
        a connection's publishes run together and share one flush. Pausing
        the publisher after each would give every publish its own flush to
        every subscriber, which costs far more than the deliveries themselves.
        """
        return time.perf_counter() - self.delivering

    def deliver(self, channel: str, data: Any, position: Position | None = None) -> Awaitable[None] | None:
        """Send ``data`` to every local subscriber of ``channel``, one encode per view.

        Events of channels with history come with their ``position``; one
        already delivered here is dropped. Returns None, or, when some
        subscribers are congested, an awaitable that resolves once they
        have drained (or were closed as slow). The time it takes is added
        to `delivering`.
        """
        began = time.perf_counter()
        try:
            if position is not None:
                return self._deliver_logged(channel, data, position)
            return self._deliver(channel, data)
        finally:
            self.delivering += time.perf_counter() - began

    def _deliver(self, channel: str, data: Any) -> Awaitable[None] | None:
        groups = self._channels.get(channel)
        if not groups:
            return None
        congested: list[Subscriber] = []
        sent = 0
        for view, members in list(groups.values()):
            frame = Frame(view.frame(channel, data))  # its wire bytes are built once, for all members
            sent += len(members)
            for subscriber in list(members):
                if subscriber.send_frame(frame):
                    congested.append(subscriber)
        self._count(channel, sent)
        return Congested(congested) if congested else None

    def _count(self, channel: str, sent: int) -> None:
        """Add ``sent`` event frames to ``channel``'s deliveries (when counted)."""
        counter = self._counted.get(channel)
        if counter is not None:
            counter.inc(sent)

    def _deliver_logged(self, channel: str, data: Any, position: Position) -> Awaitable[None] | None:
        """Deliver one numbered event (or, when ``data`` is a `Gap`, announce the offsets up to ``position``).

        Offsets skipped within the epoch are announced with a gap notice
        before the event, so no subscriber misses one silently.
        """
        groups = self._channels.get(channel)
        if groups is None:
            return None
        lost = isinstance(data, Gap)
        verdict = self._log.arrive(channel, position, lost=lost)
        if verdict.step is Step.DROP:
            return None  # delivered already, or lost before anything this process delivered of that epoch
        floors = self._log.floors(channel)
        congested: list[Subscriber] = []
        gap = verdict.gap
        if gap is not None:
            logger.warning("channel %s: offsets %d-%d cannot be delivered; subscribers are told", channel,
                           gap.first, gap.last)
            self._announce(channel, groups, gap, floors, congested)
        if not lost:
            epoch = verdict.epoch
            if verdict.arrival is Arrival.NEW_EPOCH:
                logger.warning("channel %s: its history was lost (new epoch %s); subscribers are told", channel,
                               epoch)
            skip = {subscriber for subscriber, floor in floors.items() if floor >= position.offset}
            sent = 0
            for view, members in list(groups.values()):
                frame = Frame(view.frame(channel, data, position.offset, epoch))
                sent += len(members)
                for subscriber in list(members):
                    if subscriber not in skip and subscriber.send_frame(frame):
                        congested.append(subscriber)
            self._count(channel, sent - len(skip))
        self._log.caught_up(channel, position.offset)
        return Congested(congested) if congested else None

    @staticmethod
    def _announce(channel: str, groups: dict[Hashable, _Group], gap: Gap, floors: Mapping[Subscriber, float],
                  congested: list[Subscriber]) -> None:
        """Send the gap notice to every subscriber, from just after what its replay sent (if it is replaying)."""
        for view, members in list(groups.values()):
            frame = Frame(view.gap_frame(channel, gap))
            for subscriber in list(members):
                floor = floors.get(subscriber, 0)
                if floor >= gap.last:
                    continue  # still replaying, or its replay sent past the gap
                notice = frame if floor < gap.first else Frame(view.gap_frame(
                    channel, Gap(gap.epoch, int(floor) + 1, gap.last)))
                if subscriber.send_frame(notice):
                    congested.append(subscriber)

    async def drain(self) -> None:
        """Wait for pending broker unsubscribes (used on shutdown)."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)


class Congested:
    """The subscribers one delivery found holding publishers; awaiting it waits until each releases them.

    A subscriber releases its publishers once it has drained, is gone, or
    has held them for ``limits.publish_wait`` in this congestion, so the
    wait is bounded by that, whoever is slow. Nothing runs until it is
    awaited, so a caller that must not wait (a broker reading another
    process's messages) may simply drop it.
    """

    __slots__ = ("subscribers",)

    def __init__(self, subscribers: list[Subscriber]) -> None:
        self.subscribers = subscribers

    def __await__(self) -> Generator[Any, None, None]:
        return self._wait().__await__()

    async def _wait(self) -> None:
        for subscriber in self.subscribers:
            await subscriber.released()
