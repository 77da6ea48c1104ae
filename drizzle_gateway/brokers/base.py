"""The broker interface: publish to a channel, listen to a channel, and (optionally) keep history."""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from ..wire.history import Page, Position, Retention
from ..wire.presence import Change, Member


class Listener(Protocol):
    """What a broker hands each message of a channel to: the process's fan-out (`Fanout.deliver`)."""

    def __call__(self, channel: str, data: Any, position: Position | None = None) -> Awaitable[None] | None:
        """Take one message: a `Published` from this process, dumped data from others.

        Messages of channels with history come with their ``position``
        (the channel's epoch and the event's offset); ``data`` is a
        `recovery.Gap` (at the position of its last offset) when the broker
        cannot deliver the offsets it covers. Returns an awaitable when
        local subscribers are congested: a broker's ``publish`` awaits it,
        so a publisher is slowed to what its readers take; a broker reading
        other processes' messages drops it (its connection carries every
        channel, so it keeps reading).
        """


class BrokerUnavailable(Exception):
    """The broker's store cannot be reached right now (e.g. Redis is down); retrying later may work."""


class Broker(Protocol):
    """Moves validated, dumped messages from publishers to listeners.

    A process registers at most one listener per channel (its local
    fan-out); the broker's job is to reach the listeners of every process
    it spans, exactly once each, in publish order per channel. Brokers
    connect lazily, on first use.
    """

    async def publish(self, channel: str, data: Any) -> None:
        """Deliver ``data`` to every listener of ``channel``; returns once local readers have room."""

    async def subscribe(self, channel: str, listener: Listener) -> None:
        """Start calling ``listener`` for messages on ``channel``; in effect on return."""

    async def unsubscribe(self, channel: str) -> None:
        """Stop delivering ``channel`` to this process."""

    async def close(self) -> None:
        """Release connections and tasks."""


@runtime_checkable
class HistoryBroker(Broker, Protocol):
    """A broker that also numbers and retains the events of channels with history.

    Every process it spans must agree on a channel's offsets and epoch.
    ``isinstance(broker, HistoryBroker)`` tells whether a broker has these
    methods (a class may opt out by setting one to None).
    """

    async def publish_logged(self, channel: str, data: Any, retention: Retention) -> int | None:
        """Append ``data`` to the channel's history, then deliver it as (channel, data, position).

        Returns its offset, or None when the broker numbers it later (Redis, asynchronously).
        """

    async def history(self, channel: str, retention: Retention, since: Position | None = None,
                      limit: int | None = None) -> Page:
        """The retained events after ``since`` (see `Page`), or the last ``limit`` without it."""

    async def position(self, channel: str, retention: Retention) -> Position:
        """The channel's epoch and latest offset."""


IDEMPOTENCY_WINDOW = 300.0
"""Seconds a broker remembers a publish's idempotency key, by default."""

IDEMPOTENCY_KEYS = 100_000
"""Idempotency keys a process remembers in memory, by default (the least recently used go first)."""


@dataclass(frozen=True)
class Receipt:
    """What became of one publish with an idempotency key.

    ``duplicate``: the key was published on the channel within the window,
    so this publish reached nobody. ``position``: on a channel with
    history, the event's (the original's, for a duplicate), when the
    broker knew it before answering; None otherwise.
    """

    position: Position | None = None
    duplicate: bool = False


@runtime_checkable
class IdempotentBroker(Protocol):
    """A broker that delivers a publish carrying an idempotency key at most once within its window.

    A broker that is not one publishes such a publish as if it had no key.
    """

    async def publish_once(self, channel: str, data: Any, key: str, retention: Retention | None) -> Receipt:
        """Publish ``data`` (with history when ``retention`` is given) unless ``key`` was, on ``channel``.

        A repeat within the broker's window is answered as a duplicate
        (with the original's position, when known) and delivered to nobody.
        """


class PresenceListener(Protocol):
    """What a presence store hands each member's join and leave to: the process's `runtime.presence.Presences`."""

    def __call__(self, channel: str, change: Change) -> None:
        """Take one change of ``channel``'s members (from any process the store spans)."""


class PresenceStore(Protocol):
    """Who is on each channel, over every process a broker spans.

    Each process tells the store how many connections it has of each
    member; the store sums them, and announces a member's `JOIN` when its
    first connection anywhere arrives and its `LEAVE` when its last one
    goes (or its process is gone), to the listener of every process.
    """

    def listen(self, listener: PresenceListener) -> None:
        """Hand this process's listener every change of the channels it listens to (one listener)."""

    async def update(self, channel: str, key: str, data: dict[str, Any], connections: int,
                     max_members: int | None = None) -> bool:
        """This process now has ``connections`` (0: none) connections of member ``key`` on ``channel``.

        ``data`` is the member's dumped entry (kept from its first
        connection). Returns False, changing nothing, when ``key`` is not a
        member yet and the channel has ``max_members`` already.
        """

    async def members(self, channel: str) -> list[Member]:
        """The members of ``channel`` now, with their connections over every process."""


@runtime_checkable
class BeatingPresence(PresenceStore, Protocol):
    """A presence store shared by processes that beat to say they live (Redis's), which counts its trouble."""

    beats_failed: int
    """Heartbeats the backend did not take; after enough in a row the other processes presume this one dead."""

    rejoins: int
    """Times the backend had forgotten this process and its members were sent again (their watchers saw
    them leave, then join)."""


@runtime_checkable
class PresenceBroker(Broker, Protocol):
    """A broker that also keeps presence (``isinstance(broker, PresenceBroker)`` tells)."""

    @property
    def presence(self) -> PresenceStore:
        """The broker's presence store."""


@runtime_checkable
class Monitored(Protocol):
    """A broker whose backend may be unreachable (the Redis broker), which says so for metrics and probes.

    A broker that is not one (the in-process broker) is always reachable.
    """

    @property
    def connected(self) -> bool:
        """True while the backend is reachable and in sync."""

    @property
    def reconnects(self) -> int:
        """How many times the backend came back after an outage."""

    def connect(self) -> None:
        """Connect now rather than on first use (a readiness probe asks before anything was published)."""
