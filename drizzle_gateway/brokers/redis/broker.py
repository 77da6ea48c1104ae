"""Scale-out over Redis pub/sub: every gateway process of an app hears every publish.

Each process holds two Redis connections: one subscriber connection (one
Redis subscription per channel that has local subscribers) and one
publisher connection fed by a single ordered outbox. A publish is
delivered to the publishing process's own subscribers at once and sent to
Redis tagged with the process's origin id; receivers skip their own
origin, so nobody hears a message twice.

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
(trimmed or expired) are handed on as one `Gap`, so none is skipped silently.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
import time
import uuid
from collections import deque
from collections.abc import Awaitable
from typing import Any, TypeVar
from urllib.parse import urlsplit

from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from ...wire.dialect import decode, encode
from ...wire.history import Page, Position, Retention
from ...wire.recovery import Arrival, Gap, arrival
from ..base import BrokerUnavailable, Listener
from . import streams

logger = logging.getLogger("drizzle_gateway")

REDIS_ERRORS = (RedisError, OSError, TimeoutError)
"""What a failing or unreachable Redis raises (TimeoutError included)."""

_ORIGIN_LENGTH = 32  # uuid4().hex
_CAUGHT_UP = b"drizzle:caught-up"
"""The PING a reconnected subscriber sends after its catch-up reads: its PONG follows every event numbered before."""

T = TypeVar("T")


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
        self.origin = uuid.uuid4().hex
        self._header = f"{self.origin} ".encode()
        self._prefix_bytes = prefix.encode()
        self._listeners: dict[str, Listener] = {}
        self._outbox: deque[tuple[str, bytes, Retention | None, int]] = deque()
        self._sending = 0  # publishes of the batch on its way to Redis, not yet answered
        self._sequence = itertools.count(1)  # numbers publishes with history: a resend is applied once
        self._positions: dict[str, Position] = {}  # channels with history: the last event delivered here
        self._retentions: dict[str, Retention] = {}
        self._unknown_since: dict[str, float] = {}  # subscribed while Redis was down: since when (unix time)
        self._outbox_ready = asyncio.Event()
        self._up = asyncio.Event()
        self._attempt: asyncio.Future | None = None
        self._pubsub: PubSub | None = None
        self._subscribed: set[str] = set()
        self._confirming: dict[bytes, deque[asyncio.Future]] = {}
        self._reader: asyncio.Task | None = None
        self._outage_since: float | None = None
        self._dropped = 0
        self._publisher: Redis | None = None
        self._subscriber: Redis | None = None
        self._tasks: list[asyncio.Task] = []
        self._closed = False
        self._idle = asyncio.Event()
        self._idle.set()

    def __repr__(self) -> str:
        return f"RedisBroker({self._where()!r}, prefix={self.prefix!r})"

    @property
    def connected(self) -> bool:
        """True while the subscriber connection is up and in sync."""
        return self._up.is_set()

    @property
    def pending(self) -> int:
        """Publishes Redis has not yet answered: those waiting to be sent, and the batch on its way."""
        return len(self._outbox) + self._sending

    # -- the broker interface ------------------------------------------------

    async def publish(self, channel: str, data: Any) -> None:
        """Deliver locally now; send to the other processes through Redis, in order."""
        message = self._header + encode(data).encode()
        listener = self._listeners.get(channel)
        congested = listener(channel, data) if listener is not None else None
        self._enqueue(self.prefix + channel, message, None)
        if congested is not None:
            await congested

    def _enqueue(self, name: str, message: bytes, retention: Retention | None) -> None:
        self._start()
        if len(self._outbox) >= self.max_pending:
            self._outbox.popleft()
            self._dropped += 1
            if self._dropped == 1:
                logger.warning("redis outbox full (%d publishes): dropping the oldest until redis catches up",
                               self.max_pending)
        self._outbox.append((name, message, retention, next(self._sequence) if retention is not None else 0))
        self._idle.clear()
        self._outbox_ready.set()

    async def publish_logged(self, channel: str, data: Any, retention: Retention) -> None:
        """Queue ``data`` for the channel's stream; every process (this one too) delivers it from Redis.

        Returns at once: the offset is given by Redis when the publish is
        sent, which waits for Redis while it is down (bounded by ``max_pending``).
        """
        self._enqueue(channel, encode(data).encode(), retention)

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
            raise BrokerUnavailable(f"redis at {self._where()} cannot be reached ({type(exc).__name__})") from exc
        return found

    async def position(self, channel: str, retention: Retention) -> Position:
        """The channel's epoch and latest offset, as Redis has them; also where this process starts from."""
        listening = channel in self._listeners
        if listening:
            self._retentions[channel] = retention
        try:
            position = (await self._read_stream(channel, retention, None, 0)).position
        except Exception:
            if listening and channel not in self._positions:
                self._unknown_since.setdefault(channel, time.time())
            raise
        if listening:
            self._unknown_since.pop(channel, None)
            last = self._positions.get(channel)
            if last is None or last.epoch != position.epoch or last.offset < position.offset:
                self._positions[channel] = position
        return position

    async def _read_stream(self, channel: str, retention: Retention, since: Position | None,
                           limit: int | None, newer_than: float | None = None, create: bool = True) -> Page:
        """One READ; ``create``: a channel nobody published to keeps the epoch it answers (with a TTL)."""
        self._start()
        count = limit if limit is not None else (retention.size if since is None else 2 * retention.size + 100)
        args = streams.read_args(self.prefix, channel, since.offset if since is not None else None, count,
                                       retention, create, self.meta_ttl)
        assert self._publisher is not None
        async with self._reads:  # waits for a free connection rather than failing on a full pool
            answer = await self._bounded(self._publisher.eval(streams.READ, *args))
        return streams.page(answer, retention, since, limit, newer_than)

    async def subscribe(self, channel: str, listener: Listener) -> None:
        """Listen to ``channel``; in effect on return unless Redis is down (then on reconnect)."""
        self._listeners[channel] = listener
        self._start()
        attempt = self._attempt
        if attempt is not None and not attempt.done():
            try:
                await self._bounded(asyncio.shield(attempt))
            except TimeoutError:
                return
        if not self._up.is_set() or self._listeners.get(channel) is not listener:
            return
        name = self.prefix + channel
        try:
            if name not in self._subscribed:
                await self._send_subscribe([name])
            waiters = self._confirming.get(name.encode())
            if waiters:
                await self._bounded(asyncio.shield(waiters[-1]))
        except Exception as exc:  # redis-py may also fail oddly on a connection torn down under it
            self._break(exc)

    async def unsubscribe(self, channel: str) -> None:
        """Stop listening to ``channel`` in this process."""
        self._listeners.pop(channel, None)
        self._positions.pop(channel, None)
        self._retentions.pop(channel, None)
        self._unknown_since.pop(channel, None)
        name = self.prefix + channel
        if name not in self._subscribed:
            return
        self._subscribed.discard(name)
        if self._up.is_set() and self._pubsub is not None:
            try:
                await self._bounded(self._pubsub.unsubscribe(name))
            except Exception as exc:
                self._break(exc)

    async def close(self) -> None:
        """Send what is queued, then close connections and tasks.

        Returns within about three ``timeout``: up to one to send the queued
        publishes (skipped while Redis is known to be down), one for the
        tasks to stop, one for the connections to close.
        """
        if self._closed:
            return
        if self._tasks and not self._idle.is_set() and self._outage_since is None:
            try:
                async with asyncio.timeout(self.timeout):
                    await self._idle.wait()
            except TimeoutError:
                pass
        if self._outbox:
            logger.warning("closing with %d publishes not sent to redis", len(self._outbox))
        self._closed = True
        tasks = [task for task in (*self._tasks, self._reader) if task is not None and not task.done()]
        for task in tasks:
            task.cancel()
        if tasks:
            _, stuck = await asyncio.wait(tasks, timeout=self.timeout)
            if stuck:
                logger.warning("redis broker: %d tasks did not stop within %ss", len(stuck), self.timeout)
        self._tasks.clear()
        await self._drop_pubsub()
        for client in (self._publisher, self._subscriber):
            if client is not None:
                try:
                    await self._bounded(client.aclose())
                except Exception:
                    pass
        self._listeners.clear()

    async def _bounded(self, awaitable: Awaitable[T]) -> T:
        """Await one Redis call for at most ``timeout`` seconds (TimeoutError after).

        ``asyncio.timeout`` rather than ``wait_for``: on Python 3.11 ``wait_for``
        can swallow a cancellation that arrives as the call completes, which
        left `close` waiting forever on a task that had been cancelled.
        """
        async with asyncio.timeout(self.timeout):
            return await awaitable

    # -- supervision ---------------------------------------------------------

    def _start(self) -> None:
        if self._tasks or self._closed:
            return
        options: dict[str, Any] = {
            "socket_timeout": self.timeout,
            "socket_connect_timeout": self.timeout,
            "retry": Retry(NoBackoff(), 0),
        }
        self._publisher = Redis.from_url(self.url, **options)
        self._subscriber = Redis.from_url(self.url, **options)
        self._attempt = asyncio.get_running_loop().create_future()
        self._tasks = [asyncio.ensure_future(self._supervise()), asyncio.ensure_future(self._send_outbox())]

    async def _supervise(self) -> None:
        """Keep the subscriber connection up: connect, read, reconnect with backoff."""
        loop = asyncio.get_running_loop()
        delay = self.reconnect_min
        while not self._closed:
            if self._attempt is None or self._attempt.done():
                self._attempt = loop.create_future()
            try:
                await self._connect()
            except Exception as exc:
                self._went_down(exc)
                await self._drop_pubsub()
                self._attempt.set_result(False)
                await asyncio.sleep(delay * random.uniform(0.8, 1.2))
                delay = min(delay * 2, self.reconnect_max)
                continue
            delay = self.reconnect_min
            self._came_up()
            self._attempt.set_result(True)
            self._reader = asyncio.ensure_future(self._read())
            try:
                await asyncio.wait([self._reader])
            finally:
                self._reader.cancel()  # when the supervisor itself is cancelled
            if not self._reader.cancelled():  # cancelled: a publish failed, already logged
                failure = self._reader.exception()
                if failure is not None and not isinstance(failure, REDIS_ERRORS):
                    logger.error("reading from redis failed unexpectedly; reconnecting", exc_info=failure)
                self._went_down(failure or ConnectionError("subscriber connection closed"))
            await self._drop_pubsub()

    async def _connect(self) -> None:
        """A fresh subscriber connection, subscribed to every channel with local listeners."""
        assert self._subscriber is not None
        await self._reset_publisher()  # its connection died with the old server, if there was one
        assert self._publisher is not None
        await self._bounded(self._publisher.ping())
        self._subscribed = set()
        self._pubsub = self._subscriber.pubsub()
        # A private channel keeps the connection in subscribed mode, so reads notice an outage.
        await self._send_subscribe([f"{self.prefix}__origin__.{self.origin}"])
        while True:  # subscribe() calls may add channels while we wait
            missing = [self.prefix + channel for channel in self._listeners if self.prefix + channel not in
                       self._subscribed]
            if not missing:
                return
            await self._send_subscribe(missing)

    async def _send_subscribe(self, names: list[str]) -> None:
        assert self._pubsub is not None
        loop = asyncio.get_running_loop()
        for name in names:
            self._subscribed.add(name)
            self._confirming.setdefault(name.encode(), deque()).append(loop.create_future())
        await self._bounded(self._pubsub.subscribe(*names))

    async def _read(self) -> None:
        """Dispatch messages until the connection fails; ping when idle."""
        assert self._pubsub is not None
        loop = asyncio.get_running_loop()
        last_heard = loop.time()
        ping_sent: float | None = None
        holes = await self._catch_up()
        if holes:  # decided once pub/sub has handed over every event numbered before the reads
            await self._bounded(self._pubsub.ping(_CAUGHT_UP))
            ping_sent = loop.time()
        while not self._closed:
            message = await self._pubsub.get_message(timeout=min(self.timeout, self.health_interval))
            now = loop.time()
            if message is not None:
                last_heard, ping_sent = now, None
                if holes and message["type"] == "pong" and message["data"] == _CAUGHT_UP:
                    for channel, (last, found) in holes.items():
                        self._deliver_found(channel, last, found)
                    holes = {}
                    continue
                # Local readers that fall behind are not waited for here: this connection carries every
                # channel (and the subscribe confirmations). Their frames wait, shared, in their outboxes,
                # and a reader that stays behind for send_timeout is closed as a slow consumer. Only the
                # missed events of a channel with history are awaited, read from its stream, to keep order.
                gap = self._handle(message)
                if gap is not None:
                    await gap
            elif ping_sent is not None and now - ping_sent > self.timeout:
                raise TimeoutError(f"no answer to a ping within {self.timeout}s")
            elif ping_sent is None and now - last_heard > self.health_interval:
                ping_sent = now
                await self._bounded(self._pubsub.ping())

    def _handle(self, message: dict) -> Awaitable[None] | None:
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
        if payload[_ORIGIN_LENGTH:_ORIGIN_LENGTH + 1] != b" ":
            return None  # not ours to read
        name: bytes = message["channel"]
        channel = name[len(self._prefix_bytes):].decode()
        if payload[_ORIGIN_LENGTH + 1] == streams.LOGGED_MARK:
            return self._handle_logged(channel, payload[_ORIGIN_LENGTH + 1:])
        if payload.startswith(self._header):
            return None  # our own publish, delivered locally already
        listener = self._listeners.get(channel)
        if listener is None:
            return None
        try:
            data = decode(payload[_ORIGIN_LENGTH + 1:])
        except ValueError:
            logger.warning("ignored a message on redis channel %r that is not JSON", name)
            return None
        try:
            listener(channel, data)
        except Exception:
            logger.exception("delivering a message from redis on %s failed", channel)
        return None

    def _handle_logged(self, channel: str, body: bytes) -> Awaitable[None] | None:
        """Deliver one numbered event; after a gap, the missing ones first (read from the stream)."""
        listener = self._listeners.get(channel)
        if listener is None:
            return None
        try:
            position, payload = streams.parse_logged(body)
            data = decode(payload)
        except ValueError:
            logger.warning("ignored a malformed history message on redis channel %r", channel)
            return None
        last = self._positions.get(channel)
        kind = arrival(last, position)
        if kind is Arrival.DUPLICATE:
            return None  # delivered already (read from the stream after a gap)
        if kind is Arrival.AFTER_GAP and channel in self._retentions:
            assert last is not None
            return self._fill_gap(channel, last, position, data)
        self._deliver_logged(listener, channel, data, position)
        return None

    def _deliver_logged(self, listener: Listener, channel: str, data: Any, position: Position) -> None:
        """Hand one numbered event to the local fan-out (which never makes this reader wait; see `_read`)."""
        self._positions[channel] = position
        try:
            listener(channel, data, position)
        except Exception:
            logger.exception("delivering a message from redis on %s failed", channel)

    def _deliver_gap(self, channel: str, last: Position, end: int) -> None:
        """Hand the listener a `Gap`: offsets after ``last`` up to ``end`` are gone from the stream."""
        listener = self._listeners.get(channel)
        current = self._positions.get(channel)
        if listener is None or current is None or current.epoch != last.epoch or end <= current.offset:
            return
        gap = Gap(last.epoch, current.offset + 1, end)
        logger.warning("channel %s: offsets %d-%d are no longer in redis; subscribers are told", channel,
                       gap.first, gap.last)
        self._deliver_logged(listener, channel, gap, gap.position)

    async def _fill_gap(self, channel: str, last: Position, position: Position, data: Any) -> None:
        """Deliver the events after ``last`` and before ``position`` (read from the stream), then ``data``.

        ``position`` is an event heard on pub/sub, so every later one will be
        heard there too, in order: the stream is read for the offsets before
        it only, and only those it no longer holds (trimmed or expired) are
        announced lost, as one `Gap` in their place. When the stream cannot
        be read, nothing is skipped: the error breaks the subscriber
        connection, and the reconnect's `_catch_up` reads the gap again.
        """
        found = await self._read_missed(channel, last)
        self._deliver_found(channel, last, found, before=position)
        listener = self._listeners.get(channel)
        current = self._positions.get(channel)
        if listener is not None and (
                current is None or current.epoch != position.epoch or current.offset < position.offset):
            self._deliver_logged(listener, channel, data, position)

    async def _read_missed(self, channel: str, last: Position) -> Page:
        """The channel's retained events after ``last``; ConnectionError (the reader reconnects) when unreadable."""
        try:
            return await self.history(channel, self._retentions[channel], last)
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
            listener = self._listeners.get(channel)
            current = self._positions.get(channel)
            if listener is None or (current is not None and current.epoch == found.position.epoch
                                    and logged.offset <= current.offset):
                continue
            self._deliver_logged(listener, channel, logged.data, Position(found.position.epoch, logged.offset))

    async def _catch_up(self) -> dict[str, tuple[Position, Page]]:
        """After a reconnect: deliver what each channel with history missed while pub/sub was down.

        The reads come after the channels are re-subscribed, so an event
        numbered since is on pub/sub too: a page with a hole in the same
        epoch is returned (channel -> the position it was read after, the
        page), not delivered, for `_read` to hand on once pub/sub has
        delivered what it holds (a flush of queued publishes can outrun the
        history meanwhile); what is still missing then is gone. A channel first subscribed while
        Redis was down has no position to start from: it gets the retained
        events Redis stamped after that moment (Redis's clock against this
        host's).
        """
        holes: dict[str, tuple[Position, Page]] = {}
        for channel, last in list(self._positions.items()):
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
                found = await self._read_stream(channel, retention, None, None, newer_than=since)
            except Exception as exc:
                logger.warning("could not read the events of %s from redis (%s)", channel, exc)
                continue
            del self._unknown_since[channel]
            for logged in found.events:
                listener = self._listeners.get(channel)
                if listener is not None:
                    self._deliver_logged(listener, channel, logged.data,
                                         Position(found.position.epoch, logged.offset))
            current = self._positions.get(channel)
            if current is None or current.epoch != found.position.epoch:
                self._positions[channel] = found.position
        return holes

    async def _send_outbox(self) -> None:
        """The one ordered path to Redis: batches of PUBLISH in one pipeline each.

        A batch that fails goes back to the front of the outbox and this path
        recovers on its own (`_await_publisher`): the subscriber connection,
        which checks its own health, is left alone, so it goes on hearing what
        Redis applies meanwhile, a failed batch included (a resend of it is
        applied once).
        """
        while not self._closed:
            if not self._outbox:
                self._idle.set()
                self._outbox_ready.clear()
                await self._outbox_ready.wait()
                continue
            await self._up.wait()
            batch = [self._outbox.popleft() for _ in range(min(self.batch_size, len(self._outbox)))]
            self._sending = len(batch)
            try:
                assert self._publisher is not None
                pipe = self._publisher.pipeline(transaction=False)
                for name, message, retention, sequence in batch:
                    if retention is None:
                        pipe.publish(name, message)
                    else:
                        pipe.eval(streams.APPEND, *streams.append_args(
                            self.prefix, name, message, retention, self.origin, sequence, self.meta_ttl))
                await self._bounded(pipe.execute())
            except Exception as exc:
                self._sending = 0
                self._outbox.extendleft(reversed(batch))
                while len(self._outbox) > self.max_pending:
                    self._outbox.popleft()
                    self._dropped += 1
                self._note_outage(exc)
                await self._await_publisher()
                continue
            self._sending = 0
            if self._outage_since is not None and self._up.is_set():
                self._came_up(resubscribed=0)

    async def _await_publisher(self) -> None:
        """After a failed batch: a fresh connection, then ping with backoff until Redis answers (or closing)."""
        delay = self.reconnect_min
        while not self._closed:
            await self._reset_publisher()
            await asyncio.sleep(delay * random.uniform(0.8, 1.2))
            delay = min(delay * 2, self.reconnect_max)
            try:
                assert self._publisher is not None
                await self._bounded(self._publisher.ping())
                return
            except Exception:
                continue

    async def _reset_publisher(self) -> None:
        assert self._publisher is not None
        try:
            await self._bounded(self._publisher.connection_pool.disconnect())
        except Exception:
            pass

    async def _drop_pubsub(self) -> None:
        self._up.clear()
        self._subscribed = set()
        for waiters in self._confirming.values():
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(None)  # re-subscribed on reconnect
        self._confirming.clear()
        pubsub, self._pubsub = self._pubsub, None
        if pubsub is not None:
            try:
                await self._bounded(pubsub.aclose())
            except Exception:
                pass

    # -- outage bookkeeping --------------------------------------------------

    def _break(self, exc: BaseException) -> None:
        """A call failed: stop sending and have the supervisor reconnect."""
        self._went_down(exc)
        if self._reader is not None:
            self._reader.cancel()

    def _went_down(self, exc: BaseException) -> None:
        self._up.clear()
        self._note_outage(exc)

    def _note_outage(self, exc: BaseException) -> None:
        """Log the start of an outage, once per outage."""
        if not isinstance(exc, REDIS_ERRORS):
            logger.debug("unexpected error talking to redis", exc_info=exc)
        if self._outage_since is None and not self._closed:
            self._outage_since = asyncio.get_running_loop().time()
            logger.error(
                "redis at %s is unreachable (%s: %s); serving local subscribers only, "
                "queueing up to %d publishes, reconnecting",
                self._where(), type(exc).__name__, exc, self.max_pending,
            )

    def _came_up(self, resubscribed: int | None = None) -> None:
        """The subscriber connection is in sync (``resubscribed``: channels it re-subscribed; default all)."""
        if self._outage_since is not None:
            logger.warning(
                "redis at %s is back after %.1fs: %d channels re-subscribed, %d queued publishes to send, "
                "%d dropped", self._where(), asyncio.get_running_loop().time() - self._outage_since,
                len(self._listeners) if resubscribed is None else resubscribed, len(self._outbox), self._dropped,
            )
            self._outage_since = None
            self._dropped = 0
        self._up.set()

    def _where(self) -> str:
        """The URL without credentials (user, password, query), for log lines."""
        parts = urlsplit(self.url)
        return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}{parts.path}"
