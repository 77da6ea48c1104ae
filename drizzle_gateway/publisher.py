"""Publish from any process: a Django view, a Flask handler, a Celery task, a script; no gateway in it.

::

    from drizzle_gateway import Publisher
    from myapp.topics import todo_changed

    publisher = Publisher(topics=[todo_changed], redis="redis://127.0.0.1:6379/0", prefix="drizzle:")
    publisher.publish_sync(todo_changed, {"id": 1, "title": "milk", "done": False})   # blocking
    await publisher.publish("todos", {"id": 2, "title": "eggs", "done": False})       # asyncio

A `Publisher` runs what `Gateway.publish` runs up to the broker (the same
check and dump, `drizzle_gateway.contract.topics.prepare_publish`), then
sends Redis exactly what a gateway's `RedisBroker` sends (the same
message, the same history script and keys, the same idempotency keys), so
every subscriber of every gateway process on that Redis and prefix gets
the event a gateway's own publish would have given it.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from .brokers.base import IDEMPOTENCY_WINDOW, Receipt
from .contract.topics import Topic, prepare_publish
from .wire.dialect import encode

if TYPE_CHECKING:
    from redis import Redis as SyncRedis
    from redis.asyncio import Redis as AsyncRedis

logger = logging.getLogger("drizzle_gateway")

class Publisher:
    """Publishes to the gateways sharing one Redis, from a process that serves no websocket.

    ``topics`` are the gateways' `Topic` declarations (import them from the
    application); ``redis`` and ``prefix`` must be those of the gateways'
    `RedisBroker`, as must ``meta_ttl`` for topics with history (None: its default, a day).
    ``timeout`` bounds each Redis call (seconds). A publish with an
    ``idempotency_key`` is delivered once for ``idempotency_window``
    seconds, across every gateway process and publisher on that Redis.

    `publish` uses redis-py's asyncio client (one per event loop),
    `publish_sync` its blocking client (thread-safe, one connection pool).
    Either raises marshmallow's `ValidationError` before sending anything
    when the topic is not among ``topics`` or the payload does not fit, and
    redis-py's errors when Redis cannot be reached (a publish with an
    idempotency key is then safe to send again with the same key).
    """

    def __init__(self, topics: Iterable[Topic], redis: str = "redis://127.0.0.1:6379/0", *,
                 prefix: str = "drizzle:", timeout: float = 5.0, meta_ttl: float | None = None,
                 idempotency_window: float = IDEMPOTENCY_WINDOW) -> None:
        from .brokers.redis.messages import new_origin
        from .brokers.redis.streams import META_TTL

        if not idempotency_window > 0:
            raise ValueError(f"idempotency_window must be positive, got {idempotency_window!r}")
        self.topics = list(topics)
        self.url = redis
        self.prefix = prefix
        self.timeout = timeout
        self.meta_ttl = META_TTL if meta_ttl is None else meta_ttl
        self.idempotency_window = idempotency_window
        self.origin = new_origin()
        self._tokens = itertools.count(1)
        self._sync: SyncRedis | None = None
        self._async: tuple[asyncio.AbstractEventLoop, AsyncRedis] | None = None

    async def publish(self, topic: Topic | str, payload: Any, *, idempotency_key: str | None = None,
                      **params: str) -> Receipt:
        """Check, dump and send one publish, as `Gateway.publish` would; its `Receipt` once Redis ran it.

        On a topic with history the receipt carries the event's position
        (the original's when ``duplicate``).
        """
        command = self._command(topic, payload, idempotency_key, params)
        return command.read(await command.run_async(self._async_client()))

    def publish_sync(self, topic: Topic | str, payload: Any, *, idempotency_key: str | None = None,
                     **params: str) -> Receipt:
        """`publish`, blocking: for code without an event loop (Django, Flask, Celery)."""
        command = self._command(topic, payload, idempotency_key, params)
        return command.read(command.run_sync(self._sync_client()))

    async def aclose(self) -> None:
        """Close the asyncio client (the blocking one too)."""
        if self._async is not None:
            client = self._async[1]
            self._async = None
            await client.aclose()
        self.close()

    def close(self) -> None:
        """Close the blocking client."""
        if self._sync is not None:
            self._sync.close()
            self._sync = None

    def _command(self, topic: Topic | str, payload: Any, key: str | None, params: dict[str, str]) -> _Command:
        from .brokers.redis import idempotency, streams
        from .brokers.redis.messages import tagged

        declared, channel, data = prepare_publish(self.topics, topic, payload, key, params)
        body = encode(data).encode()
        once = None
        if key is not None:
            once = idempotency.Once(key, f"{self.origin}:{next(self._tokens)}", int(self.idempotency_window * 1000))
        token = once.token if once is not None else ""
        if declared.history is not None:  # sequence 0: a publisher never resends, so it numbers nothing
            return _Command((streams.APPEND, streams.APPEND_SHA), streams.append_args(
                self.prefix, channel, body, declared.history, self.origin, 0, self.meta_ttl, once), token)
        message = tagged(self.origin, body)
        if once is not None:
            return _Command((idempotency.ONCE, idempotency.ONCE_SHA),
                            idempotency.once_args(self.prefix, channel, message, once), token)
        return _Command(None, [self.prefix + channel, message], token)

    def _options(self) -> dict[str, Any]:
        return {"socket_timeout": self.timeout, "socket_connect_timeout": self.timeout}

    def _sync_client(self) -> SyncRedis:
        if self._sync is None:
            import redis

            self._sync = redis.Redis.from_url(self.url, **self._options())
        return self._sync

    def _async_client(self) -> AsyncRedis:
        loop = asyncio.get_running_loop()
        if self._async is None or self._async[0] is not loop:
            import redis.asyncio

            self._async = (loop, redis.asyncio.Redis.from_url(self.url, **self._options()))
        return self._async[1]


class _Command:
    """One publish as Redis runs it: a script (its text and SHA) and its arguments, or (None) a plain PUBLISH.

    A script goes by its SHA (``EVALSHA``); one Redis does not hold yet (NOSCRIPT: nothing ran)
    is sent with its text, which loads it for the next publishes.
    """

    def __init__(self, script: tuple[str, str] | None, args: list[Any], token: str) -> None:
        self.script = script
        self.args = args
        self.token = token

    async def run_async(self, client: AsyncRedis) -> Any:
        if self.script is None:
            return await client.publish(*self.args)
        from redis.exceptions import NoScriptError

        text, sha = self.script
        try:
            return await client.evalsha(sha, *self.args)
        except NoScriptError:
            return await client.eval(text, *self.args)

    def run_sync(self, client: SyncRedis) -> Any:
        if self.script is None:
            return client.publish(*self.args)
        from redis.exceptions import NoScriptError

        text, sha = self.script
        try:
            return client.evalsha(sha, *self.args)
        except NoScriptError:
            return client.eval(text, *self.args)

    def read(self, answer: Any) -> Receipt:
        if self.script is None:
            return Receipt()
        from .brokers.redis.idempotency import receipt

        return receipt(answer, self.token) or Receipt()
