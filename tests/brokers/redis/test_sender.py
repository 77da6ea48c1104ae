"""The Redis broker's outbox (`Sender`): bounded, ordered, sent in pipelined batches, a failed batch sent again.

Most tests give the sender a `Link` whose publisher is a `FakeRedis`
recording each pipeline it executes (and failing or holding one when told
to), so what is sent, in which batches and in which order is seen
directly. The others send to a redis-server of the module's own: what lands
there, a batch that timed out in a frozen Redis and was sent again is
applied once, and the scripts go by their SHA, loaded again after a
``SCRIPT FLUSH``.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import Any

import pytest
from redis.asyncio import Redis

from drizzle_gateway.brokers import Receipt
from drizzle_gateway.brokers.redis import streams
from drizzle_gateway.brokers.redis.idempotency import Once, key_name
from drizzle_gateway.brokers.redis.link import Link
from drizzle_gateway.brokers.redis.messages import tagged
from drizzle_gateway.brokers.redis.sender import Sender
from drizzle_gateway.wire.history import Retention
from tests.support.polling import wait_until
from tests.support.redis_server import command_calls

PREFIX = "out:"
ORIGIN = "o" * 32
RETENTION = Retention(10)


class FakePipeline:
    """Records the commands of one pipeline; `execute` hands them to the `FakeRedis`."""

    def __init__(self, redis: FakeRedis) -> None:
        self.redis = redis
        self.commands: list[tuple[Any, ...]] = []

    def publish(self, name: str, message: bytes) -> None:
        self.commands.append(("PUBLISH", name, message))

    def evalsha(self, sha: str, *args: Any) -> None:
        self.commands.append(("EVALSHA", sha, *args))

    async def execute(self, raise_on_error: bool = True) -> list[int]:
        return await self.redis.run(self.commands)


class FakePool:
    def __init__(self, redis: FakeRedis) -> None:
        self.redis = redis

    async def disconnect(self) -> None:
        self.redis.resets += 1


class FakeRedis:
    """A publisher connection: each executed pipeline is recorded as a batch, in ``sent`` once answered.

    ``outcomes`` says what the next executions do: an exception is raised
    (the batch failed), a future is awaited first (the batch is on its way
    until the test resolves it); without one, the batch is answered at once.
    ``pings`` likewise: an exception fails a ping, an event is waited for.
    """

    def __init__(self) -> None:
        self.attempts: list[list[tuple[Any, ...]]] = []
        self.sent: list[list[tuple[Any, ...]]] = []
        self.outcomes: deque[BaseException | asyncio.Future[None]] = deque()
        self.pings: deque[BaseException | asyncio.Event] = deque()
        self.ping_count = 0
        self.resets = 0
        self.scripts_loaded: list[str] = []
        self.connection_pool = FakePool(self)

    async def script_load(self, script: str) -> str:
        self.scripts_loaded.append(script)
        return streams.APPEND_SHA

    def pipeline(self, transaction: bool = True) -> FakePipeline:
        assert transaction is False  # pipelined, not MULTI/EXEC
        return FakePipeline(self)

    async def run(self, commands: list[tuple[Any, ...]]) -> list[int]:
        self.attempts.append(list(commands))
        if self.outcomes:
            outcome = self.outcomes.popleft()
            if isinstance(outcome, BaseException):
                raise outcome
            await outcome
        self.sent.append(list(commands))
        return [1] * len(commands)

    async def ping(self) -> bool:
        self.ping_count += 1
        if self.pings:
            outcome = self.pings.popleft()
            if isinstance(outcome, BaseException):
                raise outcome
            await outcome.wait()
        return True


def plain(seq: int) -> tuple[str, bytes, None]:
    """A plain publish, as the broker queues it: the prefixed name and the origin-tagged body."""
    return PREFIX + "chat", f'{ORIGIN} {{"seq":{seq}}}'.encode(), None


def logged(seq: int) -> tuple[str, bytes, Retention]:
    """A publish with history, as the broker queues it: the bare channel and the JSON body."""
    return "feed", f'{{"seq":{seq}}}'.encode(), RETENTION


def described(command: tuple[Any, ...]) -> tuple[Any, ...]:
    """A sent command without what varies (the script's text, a fresh epoch): kind, key or name, body, sequence."""
    if command[0] == "PUBLISH":
        return command
    _, sha, _count, stream, _meta, _applied, _epoch, body, *_, sequence, _meta_ttl, _token, _window = command
    assert sha == streams.APPEND_SHA
    return "APPEND", stream, body, sequence


def make_sender(redis: Any = None, *, max_pending: int = 100, batch_size: int = 500,
                up: bool = True, url: str = "redis://127.0.0.1:1/0", timeout: float = 1.0) -> Sender:
    """A sender on a link whose publisher is ``redis`` (a `FakeRedis` unless given)."""
    link = Link(url, timeout=timeout, max_pending=max_pending, reconnect_min=0.01, reconnect_max=0.05)
    link.publisher = FakeRedis() if redis is None else redis
    if up:
        link.up.set()
    return Sender(link, prefix=PREFIX, origin=ORIGIN, max_pending=max_pending, batch_size=batch_size, meta_ttl=60)


class Running:
    """The sender's `run` as a task, cancelled on exit."""

    def __init__(self, sender: Sender) -> None:
        self.sender = sender
        self.task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Running:
        self.task = asyncio.ensure_future(self.sender.run())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.task is not None
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)


async def idle(sender: Sender) -> None:
    async with asyncio.timeout(5):
        await sender.idle.wait()


@pytest.mark.gen_test(timeout=10)
async def test_publishes_are_sent_in_order_in_pipelines_of_batch_size() -> None:
    sender = make_sender(batch_size=2)
    fake = sender._link.publisher
    for seq in range(1, 6):
        sender.put(*(logged(seq) if seq % 2 else plain(seq)))
    assert (len(sender), sender.pending, sender.idle.is_set()) == (5, 5, False)
    async with Running(sender):
        await idle(sender)
    assert [[described(command) for command in batch] for batch in fake.sent] == [
        [("APPEND", PREFIX + "h:feed", b'{"seq":1}', 1), ("PUBLISH", *plain(2)[:2])],
        [("APPEND", PREFIX + "h:feed", b'{"seq":3}', 2), ("PUBLISH", *plain(4)[:2])],
        [("APPEND", PREFIX + "h:feed", b'{"seq":5}', 3)],
    ]  # publishes with history numbered 1, 2, 3 (plain ones are not)
    assert (len(sender), sender.pending) == (0, 0)


@pytest.mark.gen_test(timeout=10)
async def test_a_publish_with_history_is_the_append_script_with_the_senders_settings() -> None:
    sender = make_sender()
    sender.put("feed.x", b'{"n":1}', Retention(5, ttl=30))
    async with Running(sender):
        await idle(sender)
    [[command]] = sender._link.publisher.sent
    expected = streams.append_args(PREFIX, "feed.x", b'{"n":1}', Retention(5, ttl=30), ORIGIN, 1, meta_ttl=60)
    assert command[0] == "EVALSHA" and command[1] == streams.APPEND_SHA
    assert sender._link.publisher.scripts_loaded == [streams.APPEND]  # once, before the first
    assert command[2:6] == tuple(expected[:4])  # three keys: stream, meta, the origin's applied sequence
    assert command[7:] == tuple(expected[5:])  # all but the fresh epoch


@pytest.mark.gen_test(timeout=10)
async def test_a_full_outbox_drops_the_oldest_and_says_so_once_per_outage(caplog) -> None:
    caplog.set_level(logging.WARNING, logger="drizzle_gateway")
    sender = make_sender(max_pending=3, up=False)
    link = sender._link

    def full_lines() -> list[str]:
        return [r.getMessage() for r in caplog.records if "outbox full" in r.getMessage()]

    link.went_down(ConnectionError("connection refused"))
    for seq in range(1, 6):
        sender.put(*plain(seq))
    assert (len(sender), link.dropped) == (3, 2)
    assert len(full_lines()) == 1 and "3 publishes" in full_lines()[0]
    async with Running(sender):
        link.came_up(0, len(sender))  # as the reader does when Redis is back: the count is logged, then reset
        await idle(sender)
        assert any("3 queued publishes to send, 2 dropped" in r.getMessage() for r in caplog.records)
        assert link.dropped == 0
        assert [command[2] for batch in link.publisher.sent for command in batch] == [
            plain(seq)[1] for seq in (3, 4, 5)]

        link.went_down(ConnectionError("connection refused"))  # the next outage is counted and logged anew
        for seq in range(6, 10):
            sender.put(*plain(seq))
        assert (len(sender), link.dropped) == (3, 1)
        assert len(full_lines()) == 2


@pytest.mark.gen_test(timeout=10)
async def test_nothing_is_sent_until_the_link_is_up() -> None:
    sender = make_sender(up=False)
    sender.put(*plain(1))
    async with Running(sender):
        for _ in range(20):  # many turns of the loop: the sender waits on the link, not on a timer
            await asyncio.sleep(0)
        assert sender._link.publisher.attempts == [] and len(sender) == 1
        sender._link.up.set()
        await idle(sender)
    assert len(sender._link.publisher.sent) == 1


@pytest.mark.gen_test(timeout=10)
async def test_pending_counts_the_batch_on_its_way_until_redis_answers() -> None:
    sender = make_sender(batch_size=2)
    fake = sender._link.publisher
    answer = asyncio.get_running_loop().create_future()
    fake.outcomes.append(answer)
    for seq in (1, 2, 3):
        sender.put(*plain(seq))
    async with Running(sender):
        await wait_until(lambda: fake.attempts, 5)
        assert (len(sender), sender.pending, sender.idle.is_set()) == (1, 3, False)  # 2 on their way, 1 waiting
        sender.put(*plain(4))
        assert (len(sender), sender.pending) == (2, 4)
        answer.set_result(None)
        await idle(sender)
        assert (len(sender), sender.pending) == (0, 0)
    assert [len(batch) for batch in fake.sent] == [2, 2]


@pytest.mark.gen_test(timeout=10)
async def test_a_failed_batch_goes_first_again_with_its_sequence_numbers(caplog) -> None:
    """After a failure: the outage is noted, the publisher reconnected and pinged, the batch sent again first."""
    caplog.set_level(logging.WARNING, logger="drizzle_gateway")
    sender = make_sender()
    link, fake = sender._link, sender._link.publisher
    fake.outcomes.append(ConnectionError("connection reset"))
    answered = asyncio.Event()
    fake.pings.append(answered)  # the first ping after the failure waits for the test
    for seq in (1, 2):
        sender.put(*logged(seq))
    async with Running(sender):
        await wait_until(lambda: fake.ping_count, 5)
        assert link.outage_since is not None and fake.resets == 1  # noted, and a fresh connection
        assert (len(sender), sender.pending) == (2, 2)  # back in the outbox
        sender.put(*logged(3))
        answered.set()
        await idle(sender)
    assert [[described(command)[3] for command in batch] for batch in fake.attempts] == [[1, 2], [1, 2, 3]]
    assert [r.getMessage() for r in caplog.records if "unreachable" in r.getMessage()] != []
    assert link.outage_since is None  # the link is up: this path's outage is over once a batch goes through
    assert [r for r in caplog.records if "is back after" in r.getMessage()] != []


@pytest.mark.gen_test(timeout=10)
async def test_the_publisher_is_reconnected_and_pinged_until_redis_answers() -> None:
    sender = make_sender()
    fake = sender._link.publisher
    fake.outcomes.append(ConnectionError("connection refused"))
    fake.pings.extend([ConnectionError("refused"), TimeoutError()])
    sender.put(*plain(1))
    async with Running(sender):
        await idle(sender)
    assert (fake.ping_count, fake.resets) == (3, 3)  # a fresh connection before each ping
    assert len(fake.attempts) == 2 and len(fake.sent) == 1


@pytest.mark.gen_test(timeout=10)
async def test_a_failed_batch_put_back_in_a_full_outbox_drops_the_oldest(caplog) -> None:
    caplog.set_level(logging.WARNING, logger="drizzle_gateway")
    sender = make_sender(max_pending=3)
    link, fake = sender._link, sender._link.publisher
    failure = asyncio.get_running_loop().create_future()
    fake.outcomes.append(failure)
    for seq in (1, 2, 3):
        sender.put(*plain(seq))
    async with Running(sender):
        await wait_until(lambda: fake.attempts, 5)
        for seq in (4, 5):  # the outbox has room: the batch on its way is not in it
            sender.put(*plain(seq))
        assert link.dropped == 0
        failure.set_exception(ConnectionError("connection reset"))
        await idle(sender)
    assert any("2 dropped" in r.getMessage() for r in caplog.records if "is back after" in r.getMessage())
    assert [command[2] for command in fake.sent[0]] == [plain(seq)[1] for seq in (3, 4, 5)]


# -- against a real redis-server ------------------------------------------------------------------


def opened(url: str, *, timeout: float = 1.0) -> Sender:
    """A sender on a real, opened link that is up."""
    sender = make_sender(url=url, timeout=timeout)
    sender._link.open()
    return sender


@pytest.mark.gen_test(timeout=20)
async def test_plain_publishes_are_published_and_those_with_history_appended_and_published(redis_server) -> None:
    observer = Redis.from_url(redis_server.url)
    pubsub = observer.pubsub(ignore_subscribe_messages=True)
    await pubsub.subscribe(PREFIX + "chat", PREFIX + "feed")
    sender = opened(redis_server.url)
    try:
        for seq in (1, 2, 3):
            sender.put(*plain(seq))
            sender.put(*logged(seq))
        async with Running(sender):
            await idle(sender)
        heard = []
        async with asyncio.timeout(5):
            while len(heard) < 6:
                message = await pubsub.get_message(timeout=1)
                if message is not None:
                    heard.append((message["channel"], message["data"]))
        chat = [data for channel, data in heard if channel == (PREFIX + "chat").encode()]
        feed = [data for channel, data in heard if channel == (PREFIX + "feed").encode()]
        assert chat == [plain(seq)[1] for seq in (1, 2, 3)]
        assert [streams.parse_logged(data.partition(b" ")[2])[1] for data in feed] == [logged(n)[1] for n in (1, 2, 3)]
        assert {data.partition(b" ")[0] for data in feed} == {ORIGIN.encode()}
        entries = await observer.xrange(PREFIX + "h:feed")
        assert [(entry_id, fields[b"d"]) for entry_id, fields in entries] == [
            (b"1-0", logged(1)[1]), (b"2-0", logged(2)[1]), (b"3-0", logged(3)[1])]
    finally:
        await pubsub.aclose()
        await observer.delete(PREFIX + "h:feed", PREFIX + "h:feed:meta", f"{PREFIX}h:feed:meta:applied:{ORIGIN}")
        await observer.aclose()
        await sender._link.close()


@pytest.mark.gen_test(timeout=30)
async def test_a_batch_that_timed_out_in_a_frozen_redis_is_applied_once(redis_server) -> None:
    """Redis applies the batch it held once it resumes; the resend of it (same sequence numbers) is skipped."""
    observer = Redis.from_url(redis_server.url)
    sender = opened(redis_server.url, timeout=0.3)
    link = sender._link
    try:
        async with Running(sender):
            sender.put("frozen", b'{"n":0}', RETENTION)
            await idle(sender)  # connected, and the channel numbered
            redis_server.freeze()
            try:
                for n in (1, 2, 3):
                    sender.put("frozen", f'{{"n":{n}}}'.encode(), RETENTION)
                await wait_until(lambda: link.outage_since is not None, 10)  # the batch was sent and timed out
                assert len(sender) == 3  # back in the outbox
            finally:
                redis_server.thaw()
            await idle(sender)
        entries = await observer.xrange(PREFIX + "h:frozen")
        assert [(entry_id, fields[b"d"]) for entry_id, fields in entries] == [
            (f"{n + 1}-0".encode(), f'{{"n":{n}}}'.encode()) for n in range(4)]
    finally:
        await observer.delete(PREFIX + "h:frozen", PREFIX + "h:frozen:meta", f"{PREFIX}h:frozen:meta:applied:{ORIGIN}")
        await observer.aclose()
        await link.close()


@pytest.mark.gen_test(timeout=20)
async def test_the_append_script_is_loaded_once_and_sent_by_its_sha_even_after_a_script_flush(redis_server) -> None:
    """Each publish with history is one EVALSHA, never the script's text; NOSCRIPT loads it again, nothing lost."""
    observer = Redis.from_url(redis_server.url)
    await observer.config_resetstat()
    sender = opened(redis_server.url)
    try:
        async with Running(sender):
            for n in range(1, 6):
                sender.put("cached", f'{{"n":{n}}}'.encode(), RETENTION)
            await idle(sender)
            calls = await command_calls(observer)
            assert (calls.get("eval", 0), calls.get("evalsha"), calls.get("script|load")) == (0, 5, 1)
            await observer.script_flush()  # as after a restart, or an operator's SCRIPT FLUSH
            for n in range(6, 11):
                sender.put("cached", f'{{"n":{n}}}'.encode(), RETENTION)
                sender.put(*plain(n))
            await idle(sender)
        calls = await command_calls(observer)
        # each plain publish once (not sent again with the appends NOSCRIPT refused), and one per append's script
        assert (calls.get("eval", 0), calls.get("script|load"), calls.get("publish")) == (0, 2, 5 + 10)
        entries = await observer.xrange(PREFIX + "h:cached")
        assert [fields[b"d"] for _, fields in entries] == [f'{{"n":{n}}}'.encode() for n in range(1, 11)]
    finally:
        await observer.delete(PREFIX + "h:cached", PREFIX + "h:cached:meta", f"{PREFIX}h:cached:meta:applied:{ORIGIN}")
        await observer.aclose()
        await sender._link.close()


@pytest.mark.gen_test(timeout=20)
async def test_the_once_script_is_sent_by_its_sha_and_a_keyed_publish_is_applied_once_after_a_script_flush(
        redis_server) -> None:
    """A keyed publish without history is one EVALSHA of ONCE; after NOSCRIPT it is sent again, published once."""
    observer = Redis.from_url(redis_server.url)
    pubsub = observer.pubsub(ignore_subscribe_messages=True)
    await pubsub.subscribe(PREFIX + "chat")
    await observer.config_resetstat()
    sender = opened(redis_server.url)
    first, second = tagged(ORIGIN, b'{"n":1}'), tagged(ORIGIN, b'{"n":2}')
    try:
        async with Running(sender):
            assert await sender.put_once("chat", first, None, Once("k1", "t:1", 60_000)) == Receipt()
            calls = await command_calls(observer)
            assert (calls.get("eval", 0), calls.get("evalsha"), calls.get("script|load")) == (0, 1, 1)
            await observer.script_flush()  # as after a restart, or an operator's SCRIPT FLUSH
            answers = [sender.put_once("chat", second, None, Once("k2", "t:2", 60_000))]
            sender.put(*plain(3))
            answers.append(sender.put_once("chat", tagged(ORIGIN, b'{"n":4}'), None, Once("k2", "t:4", 60_000)))
            async with asyncio.timeout(5):
                assert await asyncio.gather(*answers) == [Receipt(), Receipt(duplicate=True)]
            await idle(sender)
        calls = await command_calls(observer)
        # the keyed publishes NOSCRIPT refused are sent again once ONCE is loaded again: each published once
        assert (calls.get("eval", 0), calls.get("script|load"), calls.get("publish")) == (0, 2, 3)
        heard = []
        async with asyncio.timeout(5):
            while len(heard) < 3:
                message = await pubsub.get_message(timeout=1)
                if message is not None:
                    heard.append(message["data"])
        assert heard == [first, plain(3)[1], second]  # the plain publish was not sent again
        assert await pubsub.get_message(timeout=0.2) is None
    finally:
        await pubsub.aclose()
        await observer.delete(*(key_name(PREFIX, "chat", key) for key in ("k1", "k2")))
        await observer.aclose()
        await sender._link.close()
