"""The clients of the rolling-restart test: each moves to the other gateway when its own drains (1012).

Every one counts, per request id, the answers its sockets got (`Counting`),
so the test can check that no request was answered twice and none went
unanswered but for a socket that closed first.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections import Counter
from collections.abc import Callable
from typing import Any

from tornado.iostream import StreamClosedError
from tornado.websocket import WebSocketClosedError

from drizzle_gateway.client import ConnectionClosed, Event, RemoteError, backoff_delay
from drizzle_gateway.wire.dialect import decode
from tests.support.own_closes import ClosesNoticed

logger = logging.getLogger("drizzle_gateway")

GONE = (ConnectionClosed, WebSocketClosedError, StreamClosedError, OSError, TimeoutError)
"""What a client sees when its socket closed under a request (or the gateway it tried was not up)."""


class Counting(ClosesNoticed):
    """A `Client` that counts the answers (reply or error frame) to each of its request ids."""

    def __init__(self, url: str, **options: Any) -> None:
        super().__init__(url, **options)
        self.sent: list[Any] = []
        self.answers: Counter[Any] = Counter()
        self.closes: list[int | None] = []  # the close codes of the sockets the server ended
        self.reasons: list[str | None] = []
        self.moves = 0

    async def _send(self, text: str) -> None:
        self.sent.append(decode(text)["request_id"])
        await super()._send(text)

    def _receive(self, frame: dict[str, Any]) -> None:
        if "request_id" in frame:
            self.answers[frame["request_id"]] += 1
        super()._receive(frame)

    def _ended_under(self, code: int | None, reason: str | None) -> None:
        if self._gone is not None and not self._gone.done():
            self.closes.append(code)
            self.reasons.append(reason)

    async def move(self, urls: Callable[[], list[str]]) -> dict[str, Any]:
        """Reconnect (with jittered backoff, ``since`` its positions) to another gateway than the one it was on."""
        for attempt in itertools.count():
            await asyncio.sleep(backoff_delay(attempt, maximum=2.0))
            others = [url for url in urls() if url != self.url] or urls()
            try:
                replies = await self.reconnect(url=others[attempt % len(others)])
            except GONE as exc:
                logger.debug("reconnect to %s failed: %r", self.url, exc)
                continue
            self.moves += 1
            return replies
        raise AssertionError("unreachable")


class Subscriber:
    """Follows ``channel``; its events in arrival order."""

    def __init__(self, url: str, channel: str) -> None:
        self.client = Counting(url, timeout=5.0)
        self.channel = channel
        self.events: list[Event] = []
        self.unrecovered: list[Any] = []

    async def run(self, urls: Callable[[], list[str]], done: asyncio.Event) -> None:
        await self.client.connect()
        await self.client.subscribe(self.channel)
        while not done.is_set():
            try:
                self.events.append(await self.client.next_event(0.2))
            except TimeoutError:
                continue
            except ConnectionClosed:
                replies = await self.client.move(urls)
                if replies[self.channel].get("recovered") is not True:
                    self.unrecovered.append(replies[self.channel])
        await self.client.close()


class Publisher:
    """Publishes ``seq`` 1, 2, 3... on ``channel`` every ``interval`` s; an unanswered or refused one is sent again."""

    def __init__(self, url: str, channel: str, interval: float) -> None:
        self.client = Counting(url, timeout=5.0)
        self.channel = channel
        self.interval = interval
        self.acked = 0
        self.refused = 0  # SHUTTING_DOWN: not published, sent again elsewhere
        self.unanswered = 0  # the socket closed first: not run (the drain answers what it read), sent again

    async def run(self, urls: Callable[[], list[str]], stop: asyncio.Event) -> None:
        await self.client.connect()
        while not stop.is_set():
            payload = {"author": {"name": "publisher"}, "text": "event", "seq": self.acked + 1}
            try:
                await self.client.publish(self.channel, payload)
            except RemoteError as error:
                assert error.code == "SHUTTING_DOWN", error
                self.refused += 1
                await self.client.move(urls)
                continue
            except GONE:
                self.unanswered += 1
                await self.client.move(urls)
                continue
            self.acked += 1
            await asyncio.sleep(self.interval)
        await self.client.close()


class Requester:
    """Keeps ``depth`` ``whoami.record`` requests in flight, numbered from ``first``; each is retried until answered.

    Each run of one publishes its number on ``relay.ledger``, so a request
    run twice (say, its answer lost and the request sent again) shows there.
    """

    def __init__(self, url: str, depth: int, first: int) -> None:
        self.client = Counting(url, timeout=10.0)
        self.depth = depth
        self.replies: Counter[int] = Counter()
        self.refused = 0
        self.unanswered = 0
        self._numbers = itertools.count(first)
        self._moving = asyncio.Lock()
        self._generation = 0

    async def run(self, urls: Callable[[], list[str]], stop: asyncio.Event) -> None:
        await self.client.connect()
        await asyncio.gather(*(self._lane(urls, stop) for _ in range(self.depth)))
        await self.client.close()

    async def _lane(self, urls: Callable[[], list[str]], stop: asyncio.Event) -> None:
        while not stop.is_set():
            seq = next(self._numbers)
            while True:
                generation = self._generation
                try:
                    reply = await self.client.call("whoami", "record", {"seq": seq, "seconds": 0.02})
                except RemoteError as error:
                    assert error.code == "SHUTTING_DOWN", error
                    self.refused += 1
                except GONE:
                    self.unanswered += 1
                else:
                    assert reply == {"seq": seq}, reply
                    self.replies[seq] += 1
                    break
                await self._move(urls, generation)

    async def _move(self, urls: Callable[[], list[str]], generation: int) -> None:
        """Move once per closed socket, however many lanes saw it close."""
        async with self._moving:
            if generation == self._generation:
                await self.client.move(urls)
                self._generation += 1
