"""The Redis broker's one ordered path to Redis: a bounded outbox of publishes, sent in pipelined batches.

Plain publishes go as PUBLISH; publishes with history as the `streams`
APPEND script, each with a sequence number so a batch sent again after a
failure is applied once; plain publishes with an idempotency key as the
`idempotency` ONCE script. A publish with a key is answered (`put_once`).
Both scripts go by their SHA (``EVALSHA``), each loaded once per
connection, before the first batch that runs it; a publish Redis answers
NOSCRIPT (its script cache was flushed) is sent again, first, once its
script is loaded again. While Redis is unreachable the outbox keeps the
latest ``max_pending`` publishes (the oldest are dropped, counted in the
outage log) and sends them, in order, when it is back.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
from collections import deque

from redis.exceptions import NoScriptError

from ...wire.history import Retention
from ..base import Receipt
from . import idempotency, streams
from .idempotency import Once
from .link import Link

logger = logging.getLogger("drizzle_gateway")

Answer = asyncio.Future[Receipt | None]
"""What Redis made of a publish with an idempotency key; None when it was never applied (dropped, closed)."""

Queued = tuple[str, bytes, Retention | None, int, tuple[Once, Answer] | None]
"""One publish waiting: the channel's Redis name (the bare channel with history or a key), the body, the
retention (None: a plain publish), its sequence number (0 for a plain one), and its key and answer if keyed."""


class Sender:
    """The outbox of publishes and the task (`run`) that sends it to Redis in batches of ``batch_size``."""

    def __init__(self, link: Link, *, prefix: str, origin: str, max_pending: int, batch_size: int,
                 meta_ttl: float) -> None:
        self._link = link
        self.prefix = prefix
        self.origin = origin
        self.max_pending = max_pending
        self.batch_size = batch_size
        self.meta_ttl = meta_ttl
        self._queue: deque[Queued] = deque()
        self._sending = 0  # publishes of the batch on its way to Redis, not yet answered
        self._sequence = itertools.count(1)  # numbers publishes with history: a resend is applied once
        self._ready = asyncio.Event()
        self._loaded: set[str] = set()  # scripts loaded on the publisher's connection (a new one: maybe a new Redis)
        self.idle = asyncio.Event()
        """Set while nothing waits to be sent and no batch is on its way."""
        self.idle.set()

    def __len__(self) -> int:
        """Publishes waiting to be sent (the batch on its way not counted)."""
        return len(self._queue)

    @property
    def pending(self) -> int:
        """Publishes Redis has not yet answered: those waiting to be sent, and the batch on its way."""
        return len(self._queue) + self._sending

    def put(self, name: str, message: bytes, retention: Retention | None) -> None:
        """Queue one publish (``retention``: append it to the channel's stream), dropping the oldest when full."""
        self._put(name, message, retention, None)

    def put_once(self, channel: str, message: bytes, retention: Retention | None, once: Once) -> Answer:
        """Queue one publish with an idempotency key; its answer, once Redis ran it.

        ``message`` is the tagged pub/sub message without history, the JSON body with.
        """
        answer: Answer = asyncio.get_running_loop().create_future()
        self._put(channel, message, retention, (once, answer))
        return answer

    def _put(self, name: str, message: bytes, retention: Retention | None,
             keyed: tuple[Once, Answer] | None) -> None:
        if len(self._queue) >= self.max_pending:
            _unanswered(self._queue.popleft())
            self._link.dropped += 1
            if self._link.dropped == 1:
                logger.warning("redis outbox full (%d publishes): dropping the oldest until redis catches up",
                               self.max_pending)
        self._queue.append((name, message, retention, next(self._sequence) if retention is not None else 0, keyed))
        self.idle.clear()
        self._ready.set()

    def abandon(self) -> None:
        """Forget what waits (the broker closes): publishes with a key are answered None."""
        while self._queue:
            _unanswered(self._queue.popleft())

    async def run(self) -> None:
        """Send batches of PUBLISH in one pipeline each, until the broker closes.

        A batch that fails goes back to the front of the outbox and this path
        recovers on its own (`_await_publisher`): the subscriber connection,
        which checks its own health, is left alone, so it goes on hearing what
        Redis applies meanwhile, a failed batch included (a resend of it is
        applied once).
        """
        link = self._link
        while not link.closed:
            if not self._queue:
                self.idle.set()
                self._ready.clear()
                await self._ready.wait()
                continue
            await link.up.wait()
            batch = [self._queue.popleft() for _ in range(min(self.batch_size, len(self._queue)))]
            self._sending = len(batch)
            try:
                assert link.publisher is not None
                if len(self._loaded) < len(_SCRIPTS):
                    for script in sorted(_scripts(batch) - self._loaded, key=_SCRIPTS.index):
                        await link.bounded(link.publisher.script_load(script))
                        self._loaded.add(script)
                pipe = link.publisher.pipeline(transaction=False)
                for name, message, retention, sequence, keyed in batch:
                    once = keyed[0] if keyed is not None else None
                    if retention is not None:
                        pipe.evalsha(streams.APPEND_SHA, *streams.append_args(
                            self.prefix, name, message, retention, self.origin, sequence, self.meta_ttl, once))
                    elif once is not None:
                        pipe.evalsha(idempotency.ONCE_SHA, *idempotency.once_args(self.prefix, name, message, once))
                    else:
                        pipe.publish(name, message)
                answers = await link.bounded(pipe.execute(raise_on_error=False))
                unloaded = _unloaded(batch, answers)
            except Exception as exc:
                self._loaded.clear()
                self._sending = 0
                self._queue.extendleft(reversed(batch))
                while len(self._queue) > self.max_pending:
                    _unanswered(self._queue.popleft())
                    link.dropped += 1
                link.note_outage(exc)
                await self._await_publisher()
                continue
            self._sending = 0
            resent = {id(item) for item in unloaded}
            for item, answer in zip(batch, answers, strict=True):
                keyed = item[4]
                if id(item) not in resent and keyed is not None and not keyed[1].done():
                    keyed[1].set_result(idempotency.receipt(answer, keyed[0].token))
            if unloaded:  # the script cache was flushed: load the scripts again, and send these first
                self._loaded.clear()
                self._queue.extendleft(reversed(unloaded))
                continue
            if link.outage_since is not None and link.up.is_set():
                link.came_up(0, len(self._queue))

    async def _await_publisher(self) -> None:
        """After a failed batch: a fresh connection, then ping with backoff until Redis answers (or closing)."""
        link = self._link
        delay = link.reconnect_min
        while not link.closed:
            await link.reset_publisher()
            await asyncio.sleep(delay * random.uniform(0.8, 1.2))
            delay = min(delay * 2, link.reconnect_max)
            try:
                assert link.publisher is not None
                await link.bounded(link.publisher.ping())
                return
            except Exception:
                continue


_SCRIPTS = (streams.APPEND, idempotency.ONCE)
"""The scripts a batch may run, each sent as ``EVALSHA`` once loaded on the connection."""


def _scripts(batch: list[Queued]) -> set[str]:
    """The scripts ``batch`` runs: `streams.APPEND` for a publish with history, `idempotency.ONCE` for a keyed one."""
    return {streams.APPEND if item[2] is not None else idempotency.ONCE
            for item in batch if item[2] is not None or item[4] is not None}


def _unanswered(item: Queued) -> None:
    """A publish that will never be sent: its answer, if it has one, is None."""
    keyed = item[4]
    if keyed is not None and not keyed[1].done():
        keyed[1].set_result(None)


def _unloaded(batch: list[Queued], results: list[object]) -> list[Queued]:
    """The publishes of ``batch`` Redis answered NOSCRIPT; any other error is raised (the batch failed)."""
    unloaded = []
    for queued, result in zip(batch, results, strict=True):
        if isinstance(result, NoScriptError):
            unloaded.append(queued)
        elif isinstance(result, Exception):
            raise result
    return unloaded
