"""Scale-out over Redis pub/sub: every gateway process of an app hears every publish.

Each process holds two Redis connections (`link`): one subscriber
connection (one Redis subscription per channel that has local
subscribers; see `reader`) and one publisher connection fed by a single
ordered outbox (see `sender`). A publish is delivered to the publishing
process's own subscribers at once and sent to Redis tagged with the
process's origin id; receivers skip their own origin, so nobody hears a
message twice.

When Redis goes away the gateway keeps serving: local delivery goes on,
publishes wait in a bounded outbox (the oldest are dropped when it is
full), the outage is logged once, and a supervisor reconnects with backoff
and re-subscribes every channel that still has local subscribers.

Channels with history go another way (see `streams`): a publish is
one script that numbers the event, appends it to the channel's stream and
PUBLISHes it, so every process, the publishing one included, delivers it
from pub/sub with its offset. A process that finds a gap in the offsets
(it was disconnected, or re-subscribed after an outage) reads the missing
events from the stream before going on; those the stream no longer holds
(trimmed or expired) are handed on as one `Gap`, so none is skipped
silently (see `catchup`).

A publish with an idempotency key (`publish_once`) is run by a script that
sets the key and publishes at once, or finds the key set and publishes
nothing (see `idempotency`); on channels without history this process's
subscribers get it once Redis has said it is not a repeat.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from typing import TYPE_CHECKING, Any

from ...wire.dialect import encode
from ...wire.history import Page, Position, Retention
from ..base import IDEMPOTENCY_KEYS, IDEMPOTENCY_WINDOW, BrokerUnavailable, Listener, Receipt
from ..idempotency import SeenKeys
from . import streams
from .catchup import CatchUp
from .idempotency import Once
from .link import REDIS_ERRORS, Link
from .messages import new_origin, tagged
from .presence import RedisPresence
from .reader import Reader
from .sender import Answer, Sender

if TYPE_CHECKING:
    from redis.commands.core import AsyncScript

logger = logging.getLogger("drizzle_gateway")

__all__ = ["REDIS_ERRORS", "RedisBroker"]


class RedisBroker:
    """A broker on Redis pub/sub, for several gateway processes sharing topics.

    ``url`` is a redis-py URL (``redis://host:6379/0``). ``prefix`` is put
    before every channel name in Redis, so several apps can share one
    Redis. ``timeout`` bounds every Redis call (seconds). While Redis is
    unreachable, up to ``max_pending`` publishes wait in order and are sent
    when it is back; beyond that the oldest are dropped. Reconnection
    attempts back off from ``reconnect_min`` to ``reconnect_max`` seconds.
    An idle subscriber connection is pinged every ``health_interval``
    seconds so a frozen Redis is noticed too. At most ``max_reads`` history
    reads run at once; more wait for one to finish (a wait bounded by the
    request's ``action_timeout``, not counted in ``timeout``), so a burst
    of reads never exhausts the connection pool. A channel's history keys
    expire ``meta_ttl`` seconds after its last publish (see `streams`).

    A publish with an idempotency key is delivered once across every
    process on this Redis for ``idempotency_window`` seconds (each key is a
    Redis key for that long); the process also remembers the last
    ``idempotency_keys`` keys published through it, which is all that is
    checked while Redis is unreachable (see `publish_once`).

    Presence is kept in Redis too (see `presence`): the members of a
    process that stops beating leave everywhere within two
    ``presence_heartbeat`` seconds.
    """

    def __init__(
        self,
        url: str = "redis://127.0.0.1:6379/0",
        *,
        prefix: str = "drizzle:",
        timeout: float = 1.0,
        max_pending: int = 10_000,
        reconnect_min: float = 0.05,
        reconnect_max: float = 0.5,
        health_interval: float = 5.0,
        batch_size: int = 500,
        max_reads: int = 64,
        meta_ttl: float = streams.META_TTL,
        idempotency_window: float = IDEMPOTENCY_WINDOW,
        idempotency_keys: int = IDEMPOTENCY_KEYS,
        presence_heartbeat: float = 1.0,
    ) -> None:
        if max_pending < 1:
            raise ValueError("max_pending must be at least 1")
        self.url = url
        self.prefix = prefix
        self.timeout = timeout
        self.max_pending = max_pending
        self.reconnect_min = reconnect_min
        self.reconnect_max = reconnect_max
        self.health_interval = health_interval
        self.batch_size = batch_size
        self.meta_ttl = meta_ttl
        self._reads = asyncio.Semaphore(max_reads)
        self.origin = new_origin()
        self.seen_keys = SeenKeys(idempotency_window, idempotency_keys)
        self._tokens = itertools.count(1)
        self._read_script: AsyncScript | None = None
        self._listeners: dict[str, Listener] = {}
        self._link = Link(url, timeout=timeout, max_pending=max_pending, reconnect_min=reconnect_min,
                          reconnect_max=reconnect_max)
        self._sender = Sender(self._link, prefix=prefix, origin=self.origin, max_pending=max_pending,
                              batch_size=batch_size, meta_ttl=meta_ttl)
        # `history` is looked up at each read, so what replaces it on the instance (tests do) reads the gaps too
        self._catch_up = CatchUp(self._listeners, lambda channel, retention, since: self.history(
            channel, retention, since), self._read_since)
        self._presence = RedisPresence(self._link, prefix=prefix, origin=self.origin, heartbeat=presence_heartbeat,
                                       timeout=timeout, start=self._start)
        self._reader = Reader(self._link, self._listeners, self._catch_up, prefix=prefix, origin=self.origin,
                              health_interval=health_interval, queued=lambda: len(self._sender),
                              presence=self._presence.handle)
        self._tasks: list[asyncio.Task[None]] = []

    def __repr__(self) -> str:
        return f"RedisBroker({self._link.where()!r}, prefix={self.prefix!r})"

    @property
    def connected(self) -> bool:
        """True while the subscriber connection is up and in sync."""
        return self._link.up.is_set()

    @property
    def reconnects(self) -> int:
        """How many times Redis came back after an outage."""
        return self._link.reconnects

    @property
    def where(self) -> str:
        """The Redis URL without credentials, as log lines show it."""
        return self._link.where()

    async def probe(self) -> str:
        """Check that Redis answers now; what it is, for a log line (``redis 7.0.15 at redis://...``).

        Raises what an unreachable Redis raises, within ``timeout``. The
        broker itself still connects on first use.
        """
        info = await self._link.server()
        config = info.get("config_file") or "none"
        return (f"redis {info.get('redis_version', '?')} at {self.where} "
                f"(process {info.get('process_id', '?')}, config file {config})")

    def connect(self) -> None:
        """Connect now rather than on first use (a readiness probe asks before anything was published)."""
        self._start()

    @property
    def presence(self) -> RedisPresence:
        """Who is on each channel, over every process on this Redis (see `presence`)."""
        return self._presence

    @property
    def pending(self) -> int:
        """Publishes Redis has not yet answered: those waiting to be sent, and the batch on its way."""
        return self._sender.pending

    # -- the broker interface ------------------------------------------------

    async def publish(self, channel: str, data: Any) -> None:
        """Deliver locally now; send to the other processes through Redis, in order."""
        message = tagged(self.origin, encode(data).encode())
        listener = self._listeners.get(channel)
        congested = listener(channel, data) if listener is not None else None
        self._start()
        self._sender.put(self.prefix + channel, message, None)
        if congested is not None:
            await congested

    async def publish_logged(self, channel: str, data: Any, retention: Retention) -> None:
        """Queue ``data`` for the channel's stream; every process (this one too) delivers it from Redis.

        Returns at once: the offset is given by Redis when the publish is
        sent, which waits for Redis while it is down (bounded by ``max_pending``).
        """
        self._start()
        self._sender.put(channel, encode(data).encode(), retention)

    async def publish_once(self, channel: str, data: Any, key: str, retention: Retention | None) -> Receipt:
        """Publish unless ``key`` was published on ``channel`` within the window, by any process on this Redis.

        The answer is awaited for at most ``timeout`` while Redis is
        reachable. Without history, the publish reaches this process's
        subscribers once Redis says it is no repeat; while Redis is
        unreachable (or slower than ``timeout``) it reaches them at once,
        and the queued script reaches the other processes later unless it
        finds the key (so a repeat made meanwhile through another process
        reaches that process's subscribers twice). With history every
        process delivers it from Redis as usual, and the script's check
        holds whenever it runs; the receipt then carries no position.
        """
        seen = self.seen_keys.seen(channel, key)
        if seen is not None:
            return seen
        self._start()
        once = Once(key, f"{self.origin}:{next(self._tokens)}", int(self.seen_keys.window * 1000))
        body = encode(data).encode()
        if retention is not None:
            receipt = await self._answer(self._sender.put_once(channel, body, retention, once)) or Receipt()
            self.seen_keys.remember(channel, key, Receipt(receipt.position))
            return receipt
        answered = await self._answer(self._sender.put_once(channel, tagged(self.origin, body), None, once))
        self.seen_keys.remember(channel, key, Receipt())
        if answered is not None and answered.duplicate:
            return answered
        listener = self._listeners.get(channel)
        congested = listener(channel, data) if listener is not None else None
        if congested is not None:
            await congested
        return Receipt()

    async def _answer(self, answer: Answer) -> Receipt | None:
        """What Redis made of a keyed publish, or None when it is unreachable or did not answer within ``timeout``."""
        if self._link.outage_since is not None:
            return None
        try:
            async with asyncio.timeout(self.timeout):
                return await asyncio.shield(answer)
        except TimeoutError:
            return None

    async def history(self, channel: str, retention: Retention, since: Position | None = None,
                      limit: int | None = None) -> Page:
        """The channel's retained events, read from its stream (see `Page`).

        Raises `BrokerUnavailable` while Redis cannot be reached.
        """
        try:
            found = await self._read_stream(channel, retention, since, limit, create=False)
            if since is not None and since.epoch != found.position.epoch:
                found = await self._read_stream(channel, retention, None, limit, create=False)
                return Page(found.position, found.events, complete=False)
        except REDIS_ERRORS as exc:
            raise BrokerUnavailable(f"redis at {self._link.where()} cannot be reached ({type(exc).__name__})") \
                from exc
        return found

    async def position(self, channel: str, retention: Retention) -> Position:
        """The channel's epoch and latest offset, as Redis has them; also where this process starts from."""
        listening = channel in self._listeners
        if listening:
            self._catch_up.expect(channel, retention)
        try:
            position = (await self._read_stream(channel, retention, None, 0)).position
        except Exception:
            if listening:
                self._catch_up.unknown(channel)
            raise
        if listening:
            self._catch_up.known(channel, position)
        return position

    async def _read_stream(self, channel: str, retention: Retention, since: Position | None,
                           limit: int | None, newer_than: float | None = None, create: bool = True) -> Page:
        """One READ; ``create``: a channel nobody published to keeps the epoch it answers (with a TTL)."""
        self._start()
        count = limit if limit is not None else (retention.size if since is None else 2 * retention.size + 100)
        args = streams.read_args(self.prefix, channel, since.offset if since is not None else None, count,
                                 retention, create, self.meta_ttl)
        assert self._link.publisher is not None
        async with self._reads:  # waits for a free connection rather than failing on a full pool
            if self._read_script is None:  # EVALSHA, loading the script on NOSCRIPT (redis-py's `Script`)
                self._read_script = self._link.publisher.register_script(streams.READ)
            answer = await self._link.bounded(self._read_script(keys=args[1:3], args=args[3:]))
        return streams.page(answer, retention, since, limit, newer_than)

    async def _read_since(self, channel: str, retention: Retention, since: float) -> Page:
        """The channel's retained events Redis stamped after ``since`` (unix time)."""
        return await self._read_stream(channel, retention, None, None, newer_than=since)

    async def subscribe(self, channel: str, listener: Listener) -> None:
        """Listen to ``channel``; in effect on return unless Redis is down (then on reconnect)."""
        self._listeners[channel] = listener
        self._start()
        await self._reader.listen(channel, listener)

    async def unsubscribe(self, channel: str) -> None:
        """Stop listening to ``channel`` in this process."""
        self._listeners.pop(channel, None)
        self._catch_up.forget(channel)
        await self._reader.unlisten(channel)

    async def close(self) -> None:
        """Send what is queued, then close connections and tasks.

        Returns within about three ``timeout``: up to one to send the queued
        publishes (skipped while Redis is known to be down), one for the
        tasks to stop, one for the connections to close.
        """
        link = self._link
        if link.closed:
            return
        await self._presence.close()
        if self._tasks and not self._sender.idle.is_set() and link.outage_since is None:
            try:
                async with asyncio.timeout(self.timeout):
                    await self._sender.idle.wait()
            except TimeoutError:
                pass
        if len(self._sender):
            logger.warning("closing with %d publishes not sent to redis", len(self._sender))
        link.closed = True
        self._sender.abandon()
        tasks = [task for task in (*self._tasks, self._reader.task) if task is not None and not task.done()]
        for task in tasks:
            task.cancel()
        if tasks:
            _, stuck = await asyncio.wait(tasks, timeout=self.timeout)
            if stuck:
                logger.warning("redis broker: %d tasks did not stop within %ss", len(stuck), self.timeout)
        self._tasks.clear()
        await self._reader.drop_pubsub()
        await link.close()
        self._listeners.clear()

    def _start(self) -> None:
        """Connect on first use: make the clients, and start the reader's supervisor and the sender."""
        if self._tasks or self._link.closed:
            return
        self._link.open()
        self._reader.start()
        self._tasks = [asyncio.ensure_future(self._reader.supervise()), asyncio.ensure_future(self._sender.run())]
