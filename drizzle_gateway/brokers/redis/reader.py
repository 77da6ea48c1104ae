"""The Redis broker's pub/sub reader: one subscriber connection, kept up, and what it hears dispatched.

A supervisor connects, subscribes every channel with local listeners,
lets `CatchUp` read what channels with history missed meanwhile, then
reads until the connection fails, and reconnects with backoff. An idle
connection is pinged every ``health_interval`` seconds so a frozen Redis
is noticed too. Plain messages of other processes go to the channel's
listener (this process's own were delivered when published); numbered
ones go through `CatchUp`; presence changes (every process's, its own
included) go to the presence store's handler.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from redis.asyncio.client import PubSub

from ...wire.dialect import decode
from ..base import Listener
from . import streams
from .catchup import CatchUp
from .link import REDIS_ERRORS, Link
from .messages import ORIGIN_LENGTH
from .presence import PRESENCE_MARK

logger = logging.getLogger("drizzle_gateway")

__all__ = ["ORIGIN_LENGTH", "Reader"]

_CAUGHT_UP = b"drizzle:caught-up"
"""The PING a reconnected subscriber sends after its catch-up reads: its PONG follows every event numbered before."""


class Reader:
    """The subscriber connection of one broker, and the channels it is subscribed to.

    ``listeners`` is the broker's (shared, not copied); ``queued`` tells
    how many publishes wait to be sent, for the log line of a reconnect.
    """

    def __init__(self, link: Link, listeners: dict[str, Listener], catch_up: CatchUp, *, prefix: str,
                 origin: str, health_interval: float, queued: Callable[[], int],
                 presence: Callable[[str, bytes], None] | None = None) -> None:
        self._link = link
        self._listeners = listeners
        self._catch_up = catch_up
        self.prefix = prefix
        self.origin = origin
        self.health_interval = health_interval
        self._queued = queued
        self._presence = presence
        self._header = f"{origin} ".encode()
        self._prefix_bytes = prefix.encode()
        self.pubsub: PubSub | None = None
        self._subscribed: set[str] = set()
        self._confirming: dict[bytes, deque[asyncio.Future[None]]] = {}
        self.task: asyncio.Task[None] | None = None  # the current connection's read loop
        self._attempt: asyncio.Future[bool] | None = None

    def start(self) -> None:
        """Make the first connection attempt awaitable (by `listen`), before `supervise` runs."""
        self._attempt = asyncio.get_running_loop().create_future()

    async def listen(self, channel: str, listener: Listener) -> None:
        """Subscribe ``channel`` for ``listener``; in effect on return unless Redis is down (then on reconnect)."""
        link = self._link
        attempt = self._attempt
        if attempt is not None and not attempt.done():
            try:
                await link.bounded(asyncio.shield(attempt))
            except TimeoutError:
                return
        if not link.up.is_set() or self._listeners.get(channel) is not listener:
            return
        name = self.prefix + channel
        try:
            if name not in self._subscribed:
                await self._send_subscribe([name])
            waiters = self._confirming.get(name.encode())
            if waiters:
                await link.bounded(asyncio.shield(waiters[-1]))
        except Exception as exc:  # redis-py may also fail oddly on a connection torn down under it
            self._break(exc)

    async def unlisten(self, channel: str) -> None:
        """Unsubscribe ``channel`` (its listener is gone already)."""
        name = self.prefix + channel
        if name not in self._subscribed:
            return
        self._subscribed.discard(name)
        if self._link.up.is_set() and self.pubsub is not None:
            try:
                await self._link.bounded(self.pubsub.unsubscribe(name))
            except Exception as exc:
                self._break(exc)

    async def supervise(self) -> None:
        """Keep the subscriber connection up: connect, read, reconnect with backoff."""
        link = self._link
        loop = asyncio.get_running_loop()
        delay = link.reconnect_min
        while not link.closed:
            if self._attempt is None or self._attempt.done():
                self._attempt = loop.create_future()
            try:
                await self._connect()
            except Exception as exc:
                link.went_down(exc)
                await self.drop_pubsub()
                self._attempt.set_result(False)
                await asyncio.sleep(delay * random.uniform(0.8, 1.2))
                delay = min(delay * 2, link.reconnect_max)
                continue
            delay = link.reconnect_min
            link.came_up(len(self._listeners), self._queued())
            self._attempt.set_result(True)
            self.task = asyncio.ensure_future(self._read())
            try:
                await asyncio.wait([self.task])
            finally:
                self.task.cancel()  # when the supervisor itself is cancelled
            if not self.task.cancelled():  # cancelled: a publish failed, already logged
                failure = self.task.exception()
                if failure is not None and not isinstance(failure, REDIS_ERRORS):
                    logger.error("reading from redis failed unexpectedly; reconnecting", exc_info=failure)
                link.went_down(failure or ConnectionError("subscriber connection closed"))
            await self.drop_pubsub()

    async def _connect(self) -> None:
        """A fresh subscriber connection, subscribed to every channel with local listeners."""
        link = self._link
        assert link.subscriber is not None and link.publisher is not None
        await link.reset_publisher()  # its connection died with the old server, if there was one
        await link.bounded(link.publisher.ping())
        self._subscribed = set()
        self.pubsub = link.subscriber.pubsub()
        # A private channel keeps the connection in subscribed mode, so reads notice an outage.
        await self._send_subscribe([f"{self.prefix}__origin__.{self.origin}"])
        while True:  # listen() calls may add channels while we wait
            missing = [self.prefix + channel for channel in self._listeners if self.prefix + channel not in
                       self._subscribed]
            if not missing:
                return
            await self._send_subscribe(missing)

    async def _send_subscribe(self, names: list[str]) -> None:
        assert self.pubsub is not None
        loop = asyncio.get_running_loop()
        for name in names:
            self._subscribed.add(name)
            self._confirming.setdefault(name.encode(), deque()).append(loop.create_future())
        await self._link.bounded(self.pubsub.subscribe(*names))

    async def _read(self) -> None:
        """Dispatch messages until the connection fails; ping when idle."""
        link = self._link
        assert self.pubsub is not None
        loop = asyncio.get_running_loop()
        last_heard = loop.time()
        ping_sent: float | None = None
        holes = await self._catch_up.catch_up()
        if holes:  # decided once pub/sub has handed over every event numbered before the reads
            await link.bounded(self.pubsub.ping(_CAUGHT_UP))
            ping_sent = loop.time()
        while not link.closed:
            message = await self.pubsub.get_message(timeout=min(link.timeout, self.health_interval))
            now = loop.time()
            if message is not None:
                last_heard, ping_sent = now, None
                if holes and message["type"] == "pong" and message["data"] == _CAUGHT_UP:
                    self._catch_up.deliver_holes(holes)
                    holes = {}
                    continue
                # Local readers that fall behind are not waited for here: this connection carries every
                # channel (and the subscribe confirmations). Their frames wait, shared, in their outboxes,
                # and a reader that stays behind for send_timeout is closed as a slow consumer. Only the
                # missed events of a channel with history are awaited, read from its stream, to keep order.
                gap = self._handle(message)
                if gap is not None:
                    await gap
            elif ping_sent is not None and now - ping_sent > link.timeout:
                raise TimeoutError(f"no answer to a ping within {link.timeout}s")
            elif ping_sent is None and now - last_heard > self.health_interval:
                ping_sent = now
                await link.bounded(self.pubsub.ping())

    def _handle(self, message: dict[str, Any]) -> Awaitable[None] | None:
        """Dispatch one pub/sub message; an awaitable when missed events must be read first."""
        kind = message["type"]
        if kind == "subscribe":
            waiters = self._confirming.get(message["channel"])
            if waiters:
                waiter = waiters.popleft()
                if not waiter.done():
                    waiter.set_result(None)
                if not waiters:
                    del self._confirming[message["channel"]]
            return None
        if kind != "message":
            return None
        payload: bytes = message["data"]
        if payload[ORIGIN_LENGTH:ORIGIN_LENGTH + 1] != b" ":
            return None  # not ours to read
        name: bytes = message["channel"]
        channel = name[len(self._prefix_bytes):].decode()
        if payload[ORIGIN_LENGTH + 1] == streams.LOGGED_MARK:
            return self._catch_up.handle(channel, payload[ORIGIN_LENGTH + 1:])
        if payload[ORIGIN_LENGTH + 1] == PRESENCE_MARK:  # every process hears these, their origin's too
            if self._presence is not None:
                self._presence(channel, payload[ORIGIN_LENGTH + 2:])
            return None
        if payload.startswith(self._header):
            return None  # our own publish, delivered locally already
        listener = self._listeners.get(channel)
        if listener is None:
            return None
        try:
            data = decode(payload[ORIGIN_LENGTH + 1:])
        except ValueError:
            logger.warning("ignored a message on redis channel %r that is not JSON", name)
            return None
        try:
            listener(channel, data)
        except Exception:
            logger.exception("delivering a message from redis on %s failed", channel)
        return None

    async def drop_pubsub(self) -> None:
        """Close the subscriber connection; those waiting for a subscription are let go (re-subscribed later)."""
        self._link.up.clear()
        self._subscribed = set()
        for waiters in self._confirming.values():
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(None)  # re-subscribed on reconnect
        self._confirming.clear()
        pubsub, self.pubsub = self.pubsub, None
        if pubsub is not None:
            try:
                await self._link.bounded(pubsub.aclose())
            except Exception:
                pass

    def _break(self, exc: BaseException) -> None:
        """A call failed: stop reading and have the supervisor reconnect."""
        self._link.went_down(exc)
        if self.task is not None:
            self.task.cancel()
