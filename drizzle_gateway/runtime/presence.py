"""This process's side of presence: its members' connections, and who hears joins and leaves.

`Presences` counts the connections of this process per channel and
member, and tells the broker's presence store each new count, so the
store can announce a member once, however many connections (or processes)
it has. The store hands every join and leave back to `Presences.deliver`,
which sends it to the channel's subscribers that asked for them
(``join_leave``), cut to each one's ``member_fields`` and encoded once
per view. At most ``limits.presence_rate`` changes a second (bursts of
``limits.presence_burst``) are sent per channel; the ones over it are not,
and once the rate allows, the channel's subscribers get one ``stale``
notice instead, telling them to list the members again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Hashable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..brokers.base import BrokerUnavailable
from ..wire.errors import ActionError, ErrorCode
from ..wire.frame import Frame
from ..wire.presence import Change, Member
from .limits import Limits, TokenBucket

if TYPE_CHECKING:
    from ..brokers.base import PresenceStore
    from ..schema.selection import Selection
    from .fanout import Subscriber

logger = logging.getLogger("drizzle_gateway")

NO_STORE = "this gateway's broker keeps no presence"

_Watch = tuple["Selection | None", set["Subscriber"]]
"""One member selection of a channel's join and leave subscribers, and the subscribers that share it."""


@dataclass(frozen=True)
class Attendance:
    """What one subscription to a channel with presence asks: to be a member, and to hear joins and leaves.

    ``entry`` is the member key and dumped entry (None: no member);
    with ``watch`` the subscriber gets joins and leaves, members cut to
    ``selection``.
    """

    entry: tuple[str, dict[str, Any]] | None = None
    watch: bool = False
    selection: Selection | None = None


class Presences:
    """The members this process holds a connection of, and the subscribers of joins and leaves.

    ``store`` is the broker's presence store (None: a broker without one,
    which the gateway refuses topics with presence on).
    """

    def __init__(self, store: PresenceStore | None, limits: Limits) -> None:
        self._store = store
        self._limits = limits
        self._connections: dict[tuple[str, str], int] = {}  # (channel, key): this process's connections
        self._data: dict[tuple[str, str], dict[str, Any]] = {}  # (channel, key): the entry of its first one
        self._keys: dict[tuple[Subscriber, str], str] = {}  # (subscriber, channel): the member it counts for
        self._watchers: dict[str, dict[Hashable, _Watch]] = {}
        self._buckets: dict[str, TokenBucket] = {}
        self._stale: dict[str, asyncio.TimerHandle] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.dropped = 0  # changes not sent for being over the rate (for tests and metrics)
        self._listening = False

    @property
    def member_count(self) -> int:
        """How many (channel, member) pairs this process holds a connection of."""
        return len(self._connections)

    def connections(self, channel: str, key: str) -> int:
        """How many of this process's subscriptions to ``channel`` count for member ``key``."""
        return self._connections.get((channel, key), 0)

    # -- members ----------------------------------------------------------------

    async def enter(self, subscriber: Subscriber, channel: str, key: str, data: dict[str, Any]) -> None:
        """Count ``subscriber`` as a connection of member ``key`` on ``channel`` (LIMIT_EXCEEDED when full).

        A subscriber counted for another key of the channel moves to this one.
        """
        store = self._require()
        previous = self._keys.get((subscriber, channel))
        if previous == key:
            return
        place = (channel, key)
        count = self._connections.get(place, 0) + 1
        self._connections[place] = count
        self._data.setdefault(place, data)
        self._keys[(subscriber, channel)] = key
        try:
            accepted = await store.update(channel, key, self._data[place], count, self._limits.max_members)
        except BaseException:
            self._release(subscriber, channel, key)
            raise
        if not accepted:
            self._release(subscriber, channel, key)
            raise ActionError(ErrorCode.LIMIT_EXCEEDED, "this channel has as many members as it may",
                              {"limit": "max_members", "max": self._limits.max_members})
        if previous is not None:
            self._drop(channel, previous)

    def leave(self, subscriber: Subscriber, channel: str) -> None:
        """``subscriber`` no longer counts for a member of ``channel``; the member leaves with its last connection."""
        key = self._keys.pop((subscriber, channel), None)
        if key is not None:
            self._drop(channel, key)

    def _release(self, subscriber: Subscriber, channel: str, key: str) -> None:
        if self._keys.get((subscriber, channel)) == key:
            del self._keys[(subscriber, channel)]
            self._drop(channel, key)

    def _drop(self, channel: str, key: str) -> None:
        """One connection of ``key`` fewer; the store is told in the background."""
        place = (channel, key)
        count = self._connections.get(place, 0) - 1
        data = self._data.get(place, {})
        if count > 0:
            self._connections[place] = count
        else:
            count = 0
            self._connections.pop(place, None)
            self._data.pop(place, None)
        self._spawn(self._tell(channel, key, data, count))

    async def _tell(self, channel: str, key: str, data: dict[str, Any], count: int) -> None:
        try:
            await self._require().update(channel, key, data, count)
        except Exception:
            logger.exception("presence of %s on %s could not be updated", key, channel)

    async def members(self, channel: str) -> list[Member]:
        """The members of ``channel`` over every process (UNAVAILABLE while the store cannot be reached)."""
        try:
            return await self._require().members(channel)
        except BrokerUnavailable as exc:
            logger.warning("members of %s are unavailable: %s", channel, exc)
            raise ActionError(ErrorCode.UNAVAILABLE, "the members cannot be listed right now; retry later") from None

    def _require(self) -> PresenceStore:
        """The store, listened to from the first use on (a process that never uses presence takes no part)."""
        if self._store is None:
            raise ActionError(ErrorCode.INVALID_DATA, NO_STORE)
        if not self._listening:
            self._listening = True
            self._store.listen(self.deliver)
        return self._store

    # -- joins and leaves -------------------------------------------------------

    def watch(self, subscriber: Subscriber, channel: str, selection: Selection | None) -> None:
        """Send ``subscriber`` the joins and leaves of ``channel``, members cut to ``selection``."""
        self._require()
        self.unwatch(subscriber, channel)
        key: Hashable = (id(subscriber.protocol), selection.fields if selection is not None else None)
        watches = self._watchers.setdefault(channel, {})
        _, subscribers = watches.setdefault(key, (selection, set()))
        subscribers.add(subscriber)
        if channel not in self._buckets:
            rate, burst = self._limits.presence_rate, self._limits.presence_burst
            if rate is not None:
                self._buckets[channel] = TokenBucket(rate, burst if burst is not None else rate)

    def unwatch(self, subscriber: Subscriber, channel: str) -> None:
        """Stop sending ``subscriber`` the joins and leaves of ``channel``."""
        watches = self._watchers.get(channel)
        if not watches:
            return
        for key, (_, subscribers) in list(watches.items()):
            subscribers.discard(subscriber)
            if not subscribers:
                del watches[key]
        if not watches:
            del self._watchers[channel]
            self._buckets.pop(channel, None)
            timer = self._stale.pop(channel, None)
            if timer is not None:
                timer.cancel()

    def forget(self, subscriber: Subscriber, channel: str) -> None:
        """``subscriber`` left ``channel``: no member connection, no joins and leaves."""
        self.leave(subscriber, channel)
        self.unwatch(subscriber, channel)

    def deliver(self, channel: str, change: Change) -> None:
        """Send one join or leave to the channel's subscribers that asked, within ``presence_rate``."""
        watches = self._watchers.get(channel)
        if not watches:
            return
        bucket = self._buckets.get(channel)
        if bucket is not None:
            wait = bucket.take()
            if wait:
                self.dropped += 1
                if channel not in self._stale:
                    loop = asyncio.get_running_loop()
                    self._stale[channel] = loop.call_later(wait, self._announce_stale, channel)
                return
        for selection, subscribers in list(watches.values()):
            member = selection.cut(change.data) if selection is not None else change.data
            frame: Frame | None = None
            for subscriber in list(subscribers):
                if frame is None:
                    frame = Frame(subscriber.protocol.presence(channel, change.kind, change.key, member))
                subscriber.send_frame(frame)

    def _announce_stale(self, channel: str) -> None:
        """Tell the channel's subscribers that changes were not sent, once the rate allows a frame again."""
        self._stale.pop(channel, None)
        watches = self._watchers.get(channel)
        if not watches:
            return
        bucket = self._buckets.get(channel)
        wait = bucket.take() if bucket is not None else 0.0
        if wait:
            self._stale[channel] = asyncio.get_running_loop().call_later(wait, self._announce_stale, channel)
            return
        for _, subscribers in list(watches.values()):
            for subscriber in list(subscribers):
                subscriber.send_frame(subscriber.protocol.presence_stale(channel))

    # -- life -------------------------------------------------------------------

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def drain(self) -> None:
        """Wait until the store has been told every connection that went (used on shutdown)."""
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        for timer in self._stale.values():
            timer.cancel()
        self._stale.clear()
