"""Local fan-out: which connections of this process hear which channel.

Subscribers of a channel are grouped by view (their dialect and field
selection); a message is cut to (or dumped for) each selection and
encoded once per view, then the same frame is written to every
connection in the group. When some of them are congested, delivery hands
back an awaitable that the broker awaits before it delivers more: a
publisher is slowed to what its readers take.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Hashable
from typing import TYPE_CHECKING, Any

from .outbox import Frame
from .publication import payload_of
from .selection import Selection

if TYPE_CHECKING:
    from .brokers import Broker
    from .protocol import Protocol

logger = logging.getLogger("drizzle_gateway")


class Subscriber:
    """What the fan-out needs of a connection (`Connection` implements it)."""

    protocol: Protocol

    def send_frame(self, frame: str | Frame) -> bool:  # pragma: no cover - interface
        """Queue one encoded frame for the peer; True when the peer is congested."""

    async def drained(self) -> None:  # pragma: no cover - interface
        """Wait until the peer is no longer congested (or is gone)."""


class View:
    """How a group of subscribers wants a channel: dialect + field selection."""

    __slots__ = ("protocol", "selection", "key")

    def __init__(self, protocol: Protocol, selection: Selection | None) -> None:
        self.protocol = protocol
        self.selection = selection
        self.key: Hashable = (id(protocol), selection.fields if selection else None)

    def frame(self, channel: str, message: Any) -> str:
        """The event frame these subscribers receive for ``message`` (a `Published` or dumped data)."""
        return self.protocol.event(channel, payload_of(message, self.selection))


class Fanout:
    """The channels this process listens to, and who listens to each."""

    def __init__(self, broker: Broker) -> None:
        self._broker = broker
        self._channels: dict[str, dict[Hashable, tuple[View, set[Subscriber]]]] = {}
        self._joining: dict[str, asyncio.Future] = {}
        self._tasks: set[asyncio.Task] = set()

    def subscribers(self, channel: str) -> int:
        """How many local connections listen to ``channel``."""
        return sum(len(members) for _, members in self._channels.get(channel, {}).values())

    async def add(self, subscriber: Subscriber, channel: str, view: View) -> None:
        """Add ``subscriber`` to ``channel``; the broker listens before this returns."""
        groups = self._channels.get(channel)
        if groups is None:
            groups = self._channels[channel] = {}
            joined = self._joining[channel] = asyncio.get_running_loop().create_future()
            try:
                await self._broker.subscribe(channel, self.deliver)
            except BaseException:
                self._channels.pop(channel, None)
                raise
            finally:
                self._joining.pop(channel, None)
                joined.set_result(None)
        elif channel in self._joining:
            await asyncio.shield(self._joining[channel])
            groups = self._channels.setdefault(channel, {})
        _, members = groups.setdefault(view.key, (view, set()))
        members.add(subscriber)

    def discard(self, subscriber: Subscriber, channel: str) -> None:
        """Remove ``subscriber`` from ``channel``; the broker stops after the last one."""
        groups = self._channels.get(channel)
        if not groups:
            return
        for key, (_, members) in list(groups.items()):
            members.discard(subscriber)
            if not members:
                del groups[key]
        if not groups:
            del self._channels[channel]
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

    def deliver(self, channel: str, data: Any) -> Awaitable[None] | None:
        """Send ``data`` to every local subscriber of ``channel``, one encode per view.

        Returns None, or, when some subscribers are congested, an awaitable
        that resolves once they have drained (or were closed as slow).
        """
        groups = self._channels.get(channel)
        if not groups:
            return None
        congested: list[Subscriber] = []
        for view, members in list(groups.values()):
            frame = Frame(view.frame(channel, data))  # its wire bytes are built once, for all members
            for subscriber in list(members):
                if subscriber.send_frame(frame):
                    congested.append(subscriber)
        return Congested(congested) if congested else None

    async def drain(self) -> None:
        """Wait for pending broker unsubscribes (used on shutdown)."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)


class Congested:
    """The subscribers one delivery found congested; awaiting it waits until each has drained (or is gone).

    Nothing runs until it is awaited, so a caller that must not wait (a
    broker reading another process's messages) may simply drop it.
    """

    __slots__ = ("subscribers",)

    def __init__(self, subscribers: list[Subscriber]) -> None:
        self.subscribers = subscribers

    def __await__(self):
        return self._wait().__await__()

    async def _wait(self) -> None:
        for subscriber in self.subscribers:
            await subscriber.drained()
