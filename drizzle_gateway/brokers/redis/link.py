"""The Redis broker's two connections: opening them, bounding every call, and the outage log (once per outage).

One connection (``publisher``) sends publishes and reads streams; the
other (``subscriber``) carries pub/sub. Both fail fast (no retries inside
redis-py): the `Sender` and the `Reader` reconnect on their own, with backoff.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from typing import Any, TypeVar
from urllib.parse import urlsplit

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

logger = logging.getLogger("drizzle_gateway")

REDIS_ERRORS = (RedisError, OSError, TimeoutError)
"""What a failing or unreachable Redis raises (TimeoutError included)."""

T = TypeVar("T")


class Link:
    """The connections to one Redis, and whether it is reachable.

    ``up`` is set while the subscriber connection is up and in sync;
    ``outage_since`` is when the current outage began (loop time), None
    while there is none; ``dropped`` counts the publishes the sender's full
    outbox dropped in it; ``reconnects`` counts the outages that ended. ``closed`` is set once the broker closes. Both
    connections reconnect backing off from ``reconnect_min`` to
    ``reconnect_max`` seconds.
    """

    def __init__(self, url: str, *, timeout: float, max_pending: int, reconnect_min: float,
                 reconnect_max: float) -> None:
        self.url = url
        self.timeout = timeout
        self.max_pending = max_pending
        self.reconnect_min = reconnect_min
        self.reconnect_max = reconnect_max
        self.publisher: Redis | None = None
        self.subscriber: Redis | None = None
        self.up = asyncio.Event()
        self.closed = False
        self.outage_since: float | None = None
        self.dropped = 0
        self.reconnects = 0

    def open(self) -> None:
        """Make both clients (they connect lazily, on their first call)."""
        options: dict[str, Any] = {
            "socket_timeout": self.timeout,
            "socket_connect_timeout": self.timeout,
            "retry": Retry(NoBackoff(), 0),
        }
        self.publisher = Redis.from_url(self.url, **options)
        self.subscriber = Redis.from_url(self.url, **options)

    async def server(self) -> dict[str, Any]:
        """The server section of Redis's ``INFO``, read on a connection of its own (closed after).

        Raises what an unreachable Redis raises (`REDIS_ERRORS`), within ``timeout``.
        """
        client = Redis.from_url(self.url, socket_timeout=self.timeout, socket_connect_timeout=self.timeout,
                                retry=Retry(NoBackoff(), 0))
        try:
            info: dict[str, Any] = await self.bounded(client.info("server"))
            return info
        finally:
            try:
                await self.bounded(client.aclose())
            except Exception:
                pass

    async def bounded(self, awaitable: Awaitable[T]) -> T:
        """Await one Redis call for at most ``timeout`` seconds (TimeoutError after).

        ``asyncio.timeout`` rather than ``wait_for``: on Python 3.11 ``wait_for``
        can swallow a cancellation that arrives as the call completes, which
        left `RedisBroker.close` waiting forever on a task that had been cancelled.
        """
        async with asyncio.timeout(self.timeout):
            return await awaitable

    async def reset_publisher(self) -> None:
        """Drop the publisher's connections (they died with the old server, if there was one)."""
        assert self.publisher is not None
        try:
            await self.bounded(self.publisher.connection_pool.disconnect())
        except Exception:
            pass

    async def close(self) -> None:
        """Close both clients, each within ``timeout``."""
        for client in (self.publisher, self.subscriber):
            if client is not None:
                try:
                    await self.bounded(client.aclose())
                except Exception:
                    pass

    def went_down(self, exc: BaseException) -> None:
        """The subscriber connection failed: not in sync any more."""
        self.up.clear()
        self.note_outage(exc)

    def note_outage(self, exc: BaseException) -> None:
        """Log the start of an outage, once per outage."""
        if not isinstance(exc, REDIS_ERRORS):
            logger.debug("unexpected error talking to redis", exc_info=exc)
        if self.outage_since is None and not self.closed:
            self.outage_since = asyncio.get_running_loop().time()
            logger.error(
                "redis at %s is unreachable (%s: %s); serving local subscribers only, "
                "queueing up to %d publishes, reconnecting",
                self.where(), type(exc).__name__, exc, self.max_pending,
            )

    def came_up(self, resubscribed: int, queued: int) -> None:
        """The subscriber connection is in sync (it re-subscribed ``resubscribed`` channels; ``queued`` wait)."""
        if self.outage_since is not None:
            logger.warning(
                "redis at %s is back after %.1fs: %d channels re-subscribed, %d queued publishes to send, "
                "%d dropped", self.where(), asyncio.get_running_loop().time() - self.outage_since,
                resubscribed, queued, self.dropped,
            )
            self.outage_since = None
            self.dropped = 0
            self.reconnects += 1
        self.up.set()

    def where(self) -> str:
        """The URL without credentials (user, password, query), for log lines."""
        parts = urlsplit(self.url)
        return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}{parts.path}"
