"""Idempotency keys in Redis: the scripts against a real redis-server, and the broker while Redis is away.

`ONCE` (a keyed publish without history) and the history script with a
key each set the key and publish in one step, or find the key set and
publish nothing; their answer is the first publish's record, which
`receipt` reads (the same token: this publish, resent; another one: a
duplicate). While Redis is unreachable a `RedisBroker` delivers a keyed
publish locally at once and checks the key within the process only.
"""

from __future__ import annotations

import asyncio

import pytest

from drizzle_gateway.brokers import Receipt
from drizzle_gateway.brokers.redis import idempotency, streams
from drizzle_gateway.brokers.redis.idempotency import Once, key_name, once_args, receipt
from drizzle_gateway.brokers.redis.messages import tagged
from drizzle_gateway.wire.history import Position, Retention
from tests.support.polling import wait_until

redis = pytest.importorskip("redis")
RedisBroker = pytest.importorskip("drizzle_gateway.brokers.redis.broker").RedisBroker

PREFIX = "idem:"


def test_a_key_lives_beside_its_channel_under_the_prefix():
    assert key_name("app:", "chat.a:b", "k-1") == "app:i:chat.a:b:k-1"


def test_the_record_says_whose_publish_it_was_and_where_it_stands():
    assert receipt(b"o:1", "o:1") == Receipt()
    assert receipt(b"o:1", "o:2") == Receipt(duplicate=True)
    assert receipt(b"o:1 e1a2:42", "o:1") == Receipt(Position("e1a2", 42))
    assert receipt("o:1 e1a2:42", "x") == Receipt(Position("e1a2", 42), duplicate=True)
    assert receipt(b" e1a2:7", "") == Receipt(Position("e1a2", 7))  # a publish without key
    assert receipt(0, "o:1") is None  # a resend the history script skipped


@pytest.fixture
def client(redis_server, io_loop):
    client = redis.asyncio.Redis.from_url(redis_server.url)
    yield client
    io_loop.run_sync(client.aclose)


async def heard(pubsub, count: int) -> list[bytes]:
    """The next ``count`` messages on ``pubsub`` (bounded wait)."""
    found: list[bytes] = []
    async with asyncio.timeout(5):
        while len(found) < count:
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.5)
            if message is not None:
                found.append(message["data"])
    return found


@pytest.mark.gen_test(timeout=30)
async def test_once_publishes_the_first_and_answers_its_record_to_a_repeat(client):
    pubsub = client.pubsub()
    await pubsub.subscribe(PREFIX + "chat.once")
    first = Once("k", "a:1", 60_000)
    message = tagged("a" * 32, b'{"n":1}')
    assert await client.eval(idempotency.ONCE, *once_args(PREFIX, "chat.once", message, first)) == b"a:1"
    repeat = Once("k", "b:1", 60_000)
    assert await client.eval(idempotency.ONCE, *once_args(PREFIX, "chat.once", b"x", repeat)) == b"a:1"
    other = Once("k2", "b:2", 60_000)
    await client.eval(idempotency.ONCE, *once_args(PREFIX, "chat.once", tagged("b" * 32, b'{"n":2}'), other))
    assert await heard(pubsub, 2) == [message, tagged("b" * 32, b'{"n":2}')]  # the repeat published nothing
    assert 59_000 < await client.pttl(key_name(PREFIX, "chat.once", "k")) <= 60_000
    await pubsub.aclose()


@pytest.mark.gen_test(timeout=30)
async def test_the_history_script_numbers_a_key_once_and_remembers_where(client):
    retention = Retention(10)

    def args(body: bytes, once: Once, sequence: int) -> list:
        return streams.append_args(PREFIX, "feed.once", body, retention, "origin-a", sequence, once=once)

    first = receipt(await client.eval(streams.APPEND, *args(b'{"n":1}', Once("k", "a:1", 60_000), 1)), "a:1")
    assert first is not None and first.position is not None and not first.duplicate
    resent = receipt(await client.eval(streams.APPEND, *args(b'{"n":1}', Once("k", "a:1", 60_000), 1)), "a:1")
    assert resent == first  # a batch resent after a failure: the same publish, still not a duplicate
    repeat = receipt(await client.eval(streams.APPEND, *args(b'{"n":2}', Once("k", "b:9", 60_000), 2)), "b:9")
    assert repeat == Receipt(first.position, duplicate=True)
    assert await client.xlen(PREFIX + "h:feed.once") == 1
    assert await client.get(key_name(PREFIX, "feed.once", "k")) == f"a:1 {first.position.epoch}:1".encode()


@pytest.mark.gen_test(timeout=60)
async def test_while_redis_is_down_a_keyed_publish_is_delivered_here_at_once_and_checked_here(redis_server):
    broker = RedisBroker(redis_server.url, prefix=PREFIX, timeout=0.5)
    heard_here: list = []
    try:
        await broker.subscribe("chat.down", lambda channel, data, position=None: heard_here.append(data))
        assert await broker.publish_once("chat.down", {"n": 1}, "up", None) == Receipt()
        await wait_until(lambda: heard_here == [{"n": 1}], 5)  # once Redis said it is no repeat
        redis_server.kill()
        try:
            await wait_until(lambda: not broker.connected, 5)
            assert await broker.publish_once("chat.down", {"n": 2}, "down", None) == Receipt()
            assert heard_here == [{"n": 1}, {"n": 2}]  # at once
            assert (await broker.publish_once("chat.down", {"n": 3}, "down", None)).duplicate
            assert (await broker.publish_once("chat.down", {"n": 4}, "up", None)).duplicate
            assert heard_here == [{"n": 1}, {"n": 2}]
        finally:
            redis_server.start()
    finally:
        await broker.close()
