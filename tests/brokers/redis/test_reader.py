"""The Redis broker's pub/sub reader (`Reader`) on a redis-server of the module's own.

The reader runs on its own: a `Link`, a listeners dict, and a
`StubCatchUp` in place of the catch-up that records what the reader
hands it. Another plain Redis client plays the other processes,
publishing ``<origin> <json>`` (or a numbered ``<origin> #<epoch>:<offset>
<json>``) as a broker would. A last message published after the ones
under test tells when those were read (one connection reads in order).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from redis.asyncio import Redis

from drizzle_gateway.brokers.redis.link import Link
from drizzle_gateway.brokers.redis.reader import ORIGIN_LENGTH, Reader
from drizzle_gateway.wire.history import Position
from tests.support.polling import eventually, wait_until

PREFIX = "rd:"
ORIGIN = "a" * ORIGIN_LENGTH  # the reader's own process
OTHER = "b" * ORIGIN_LENGTH  # another process
TIMEOUT = 0.5


class Heard:
    """A listener recording (channel, data); it fails on ``{"fail": true}``, as a broken fan-out would."""

    def __init__(self) -> None:
        self.items: list[tuple[str, Any]] = []

    def __call__(self, channel: str, data: Any, position: Position | None = None) -> None:
        self.items.append((channel, data))
        if data == {"fail": True}:
            raise RuntimeError("a broken fan-out")


class StubCatchUp:
    """Stands in for `CatchUp`: records each numbered body, each catch-up, and when holes were handed on.

    ``gaps`` are what `handle` returns for the next bodies (an awaitable the
    reader must wait for); ``holes`` is what the next `catch_up` returns,
    after running ``before_returning`` if set.
    """

    def __init__(self) -> None:
        self.handled: list[tuple[str, bytes]] = []
        self.catch_ups = 0
        self.gaps: list[Awaitable[None]] = []
        self.holes: dict[str, Any] = {}
        self.before_returning: Callable[[], Awaitable[None]] | None = None
        self.delivered: list[tuple[dict[str, Any], list[tuple[str, bytes]]]] = []

    def handle(self, channel: str, body: bytes) -> Awaitable[None] | None:
        self.handled.append((channel, body))
        return self.gaps.pop(0) if self.gaps else None

    async def catch_up(self) -> dict[str, Any]:
        self.catch_ups += 1
        if self.before_returning is not None:
            await self.before_returning()
        holes, self.holes = self.holes, {}
        return holes

    def deliver_holes(self, holes: dict[str, Any]) -> None:
        self.delivered.append((holes, list(self.handled)))  # and what had been handled by then


class Running:
    """A reader on ``url`` with ``listeners``, its supervisor running; stopped as the broker's close does."""

    def __init__(self, url: str, listeners: dict[str, Any] | None = None, health_interval: float = 5.0) -> None:
        self.link = Link(url, timeout=TIMEOUT, max_pending=10, reconnect_min=0.01, reconnect_max=0.05)
        self.listeners: dict[str, Any] = {} if listeners is None else listeners
        self.catch_up = StubCatchUp()
        self.reader = Reader(self.link, self.listeners, self.catch_up, prefix=PREFIX, origin=ORIGIN,  # type: ignore[arg-type]
                             health_interval=health_interval, queued=lambda: 3)
        self.supervisor: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Running:
        self.link.open()
        self.reader.start()
        self.supervisor = asyncio.ensure_future(self.reader.supervise())
        await self.wait_up()
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.link.closed = True
        tasks = [task for task in (self.supervisor, self.reader.task) if task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.reader.drop_pubsub()
        await self.link.close()

    async def wait_up(self, timeout: float = 5) -> None:
        async with asyncio.timeout(timeout):
            await self.link.up.wait()

    async def listen(self, channel: str, listener: Any) -> None:
        """Listen as the broker does: the listener first, then the subscription."""
        self.listeners[channel] = listener
        await self.reader.listen(channel, listener)


async def subscribers(observer: Redis, channel: str) -> int:
    """How many pub/sub subscribers Redis counts on ``channel`` (prefixed here)."""
    return dict(await observer.pubsub_numsub(PREFIX + channel)).get((PREFIX + channel).encode(), 0)


async def send(observer: Redis, channel: str, data: Any, origin: str = OTHER, numbered: str = "") -> None:
    """PUBLISH as a broker does: ``<origin> <json>``, or ``<origin> #<epoch>:<offset> <json>`` if ``numbered``."""
    head = f"{origin} #{numbered} " if numbered else f"{origin} "
    await observer.publish(PREFIX + channel, head.encode() + json.dumps(data).encode())


async def read_through(observer: Redis, heard: Heard, channel: str = "chat") -> None:
    """Publish a marker on ``channel`` and wait until ``heard`` has it: everything published before was read."""
    marker = {"marker": len(heard.items)}
    await send(observer, channel, marker)
    await wait_until(lambda: (channel, marker) in heard.items, 5)
    heard.items.remove((channel, marker))


@pytest.fixture
def observer(redis_server, io_loop):
    client = Redis.from_url(redis_server.url)
    yield client
    io_loop.run_sync(client.aclose)


@pytest.mark.gen_test(timeout=20)
async def test_listen_is_in_effect_on_return_and_hands_on_what_other_processes_publish(
        redis_server, observer, caplog) -> None:
    caplog.set_level(logging.WARNING, logger="drizzle_gateway")
    heard = Heard()
    async with Running(redis_server.url) as running:
        await running.listen("chat", heard)
        assert await subscribers(observer, "chat") == 1
        await send(observer, "chat", {"n": 1})
        await send(observer, "chat", {"n": 2}, origin=ORIGIN)  # this process's own: delivered when published
        await observer.publish(PREFIX + "chat", b"not a broker's message")  # no origin: not ours to read
        await observer.publish(PREFIX + "chat", f"{OTHER} {{not json".encode())
        await send(observer, "chat", {"fail": True})  # the listener fails: logged, reading goes on
        await send(observer, "chat", {"n": 3})
        await read_through(observer, heard)
        assert heard.items == [("chat", {"n": 1}), ("chat", {"fail": True}), ("chat", {"n": 3})]
        assert running.catch_up.handled == []
        messages = [r.getMessage() for r in caplog.records if r.name == "drizzle_gateway"]
        assert any("that is not JSON" in message for message in messages)
        assert any("delivering a message from redis on chat failed" in message for message in messages)
        assert running.link.up.is_set()


@pytest.mark.gen_test(timeout=20)
async def test_a_congested_listener_is_not_waited_for(redis_server, observer) -> None:
    """The connection carries every channel: what a congested fan-out returns is not awaited here."""
    heard = Heard()
    never = asyncio.get_running_loop().create_future()

    def congested(channel: str, data: Any, position: Position | None = None) -> Awaitable[None]:
        heard(channel, data)
        return never

    async with Running(redis_server.url) as running:
        await running.listen("slow", congested)
        await running.listen("chat", heard)
        await send(observer, "slow", {"n": 1})
        await send(observer, "slow", {"n": 2})
        await read_through(observer, heard)
        assert heard.items == [("slow", {"n": 1}), ("slow", {"n": 2})]


@pytest.mark.gen_test(timeout=20)
async def test_numbered_messages_go_to_the_catch_up_this_processs_own_too(redis_server, observer) -> None:
    heard = Heard()
    async with Running(redis_server.url) as running:
        await running.listen("feed", heard)
        await running.listen("chat", heard)
        await send(observer, "feed", {"n": 1}, numbered="e1:1")
        await send(observer, "feed", {"n": 2}, origin=ORIGIN, numbered="e1:2")  # delivered from pub/sub here too
        await read_through(observer, heard)
        assert running.catch_up.handled == [("feed", b'#e1:1 {"n": 1}'), ("feed", b'#e1:2 {"n": 2}')]
        assert heard.items == []


@pytest.mark.gen_test(timeout=20)
async def test_connecting_subscribes_every_listened_channel_and_a_private_one(redis_server, observer, caplog) -> None:
    caplog.set_level(logging.WARNING, logger="drizzle_gateway")
    heard = Heard()
    async with Running(redis_server.url, {"a": heard, "b": heard}) as running:
        for channel in ("a", "b", f"__origin__.{ORIGIN}"):  # the private one keeps the connection subscribed
            assert await eventually(lambda channel=channel: _counted(observer, channel, 1), 5), channel
        assert running.catch_up.catch_ups == 1  # what channels with history missed is read on each connect
        await send(observer, "b", {"n": 1})
        await read_through(observer, heard, "a")
        assert heard.items == [("b", {"n": 1})]
    assert [r for r in caplog.records if r.name == "drizzle_gateway"] == []  # no outage to speak of


async def _counted(observer: Redis, channel: str, count: int) -> bool:
    return await subscribers(observer, channel) == count


@pytest.mark.gen_test(timeout=20)
async def test_unlisten_unsubscribes(redis_server, observer) -> None:
    heard = Heard()
    async with Running(redis_server.url) as running:
        await running.listen("chat", heard)
        await running.listen("gone", heard)
        del running.listeners["gone"]  # as the broker does: the listener first
        await running.reader.unlisten("gone")
        assert await eventually(lambda: _counted(observer, "gone", 0), 5)
        assert await subscribers(observer, "chat") == 1
        await running.reader.unlisten("never")  # nothing to do


@pytest.mark.gen_test(timeout=20)
async def test_a_gap_is_awaited_before_the_next_message_is_read(redis_server, observer) -> None:
    heard = Heard()
    async with Running(redis_server.url) as running:
        await running.listen("feed", heard)
        await running.listen("chat", heard)
        reading = asyncio.get_running_loop().create_future()  # the missed events being read from the stream
        running.catch_up.gaps.append(reading)
        await send(observer, "feed", {"n": 5}, numbered="e1:5")
        await send(observer, "chat", {"n": 1})
        await wait_until(lambda: running.catch_up.handled, 5)
        with pytest.raises(TimeoutError):  # nothing more is read meanwhile, on any channel
            await wait_until(lambda: heard.items, 0.3)
        reading.set_result(None)
        await wait_until(lambda: heard.items == [("chat", {"n": 1})], 5)


@pytest.mark.gen_test(timeout=20)
async def test_a_gap_that_cannot_be_read_breaks_the_connection_and_the_reconnect_catches_up(
        redis_server, observer, caplog) -> None:
    caplog.set_level(logging.WARNING, logger="drizzle_gateway")
    heard = Heard()

    async def unreadable() -> None:
        raise ConnectionError("could not read the missed events of feed from redis")

    async with Running(redis_server.url) as running:
        await running.listen("feed", heard)
        await running.listen("chat", heard)
        running.catch_up.gaps.append(unreadable())
        await send(observer, "feed", {"n": 5}, numbered="e1:5")
        await wait_until(lambda: running.catch_up.catch_ups == 2, 5)  # reconnected: the gap is read again
        await running.wait_up()
        await send(observer, "chat", {"n": 1})
        await wait_until(lambda: heard.items == [("chat", {"n": 1})], 5)
    messages = [r.getMessage() for r in caplog.records if r.name == "drizzle_gateway"]
    assert len([message for message in messages if "unreachable (ConnectionError" in message]) == 1
    assert len([message for message in messages if "is back after" in message]) == 1


@pytest.mark.gen_test(timeout=20)
async def test_holes_are_handed_on_once_pubsub_delivered_what_it_held(redis_server, observer) -> None:
    """A catch-up's pages with a hole wait for every event numbered before the reads to be heard on pub/sub."""
    heard = Heard()
    async with Running(redis_server.url) as running:
        await running.listen("feed", heard)
        await running.listen("chat", heard)
        stub = running.catch_up

        async def published_meanwhile() -> None:  # an event numbered while the reconnected reader read the stream
            await send(observer, "feed", {"n": 9}, numbered="e1:9")

        stub.before_returning = published_meanwhile
        stub.holes = {"feed": "the page read"}
        killer = Redis.from_url(redis_server.url)
        try:
            await killer.client_kill_filter(_type="pubsub")  # the connection breaks: reconnect, catch up
        finally:
            await killer.aclose()
        await wait_until(lambda: stub.delivered, 5)
        assert stub.delivered == [({"feed": "the page read"}, [("feed", b'#e1:9 {"n": 9}')])]
        assert stub.catch_ups == 2
        await send(observer, "chat", {"n": 1})
        await wait_until(lambda: heard.items == [("chat", {"n": 1})], 5)
        assert len(stub.delivered) == 1


@pytest.mark.gen_test(timeout=30)
async def test_a_frozen_redis_is_noticed_by_pinging_an_idle_connection(redis_server, observer, caplog) -> None:
    caplog.set_level(logging.WARNING, logger="drizzle_gateway")
    heard = Heard()
    async with Running(redis_server.url, health_interval=0.2) as running:
        await running.listen("chat", heard)
        redis_server.freeze()
        try:
            await wait_until(lambda: not running.link.up.is_set(), 5)  # within about health_interval + timeout
        finally:
            redis_server.thaw()
        await running.wait_up()
        await send(observer, "chat", {"n": 1})
        await wait_until(lambda: heard.items == [("chat", {"n": 1})], 5)
    assert any("unreachable (TimeoutError" in r.getMessage() for r in caplog.records)


@pytest.mark.gen_test(timeout=30)
async def test_after_redis_restarts_every_channel_is_subscribed_again_those_listened_to_meanwhile_too(
        redis_server, caplog) -> None:
    caplog.set_level(logging.WARNING, logger="drizzle_gateway")
    heard = Heard()
    async with Running(redis_server.url) as running:
        await running.listen("chat", heard)
        redis_server.kill()
        try:
            await wait_until(lambda: not running.link.up.is_set(), 5)
            loop = asyncio.get_running_loop()
            started = loop.time()
            await running.listen("late", heard)  # returns: in effect once Redis is back
            assert loop.time() - started < 2 * TIMEOUT
        finally:
            redis_server.start()
        await running.wait_up()
        observer = Redis.from_url(redis_server.url)
        try:
            await send(observer, "late", {"n": 1})
            await send(observer, "chat", {"n": 2})
            await wait_until(lambda: heard.items == [("late", {"n": 1}), ("chat", {"n": 2})], 5)
        finally:
            await observer.aclose()
    [back] = [r.getMessage() for r in caplog.records if "is back after" in r.getMessage()]
    assert "2 channels re-subscribed, 3 queued publishes to send" in back
