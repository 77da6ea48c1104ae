"""RedisBroker inside one gateway process, against a real redis-server.

Cross-process behaviour lives in test_scaleout.py; here: the outbox
while Redis is down, shutting down, and how the tests behave without
redis-server.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from drizzle_gateway import Gateway
from drizzle_gateway.runtime.hub import BROKER_CLOSE_WAIT, CLOSE_HANDSHAKE_WAIT
from tests.support.polling import wait_until
from tests.support.redis_server import REPO
from tests.support.resources import TEST_RESOURCES, TEST_TOPICS

redis = pytest.importorskip("redis")
redis_broker = pytest.importorskip("drizzle_gateway.brokers.redis.broker")
RedisBroker = redis_broker.RedisBroker

PREFIX = "inproc:"


def message(seq: int) -> dict:
    return {"author": {"name": "me"}, "text": "hi", "seq": seq}


@pytest.fixture
def gateway(redis_server, io_loop) -> Gateway:
    """The test gateway on a RedisBroker whose outbox holds 3 publishes (overrides conftest's)."""
    gw = Gateway(resources=TEST_RESOURCES, topics=TEST_TOPICS,
                 broker=RedisBroker(redis_server.url, prefix=PREFIX, max_pending=3))
    yield gw
    io_loop.run_sync(gw.close)


def broker_tasks() -> list[asyncio.Task]:
    """Tasks still running code of the Redis broker or redis-py (not this test's own, in tests/brokers/redis/)."""
    folders = tuple(str(Path(module.__file__).parent) + os.sep for module in (redis, redis_broker))

    def runs_redis(task: asyncio.Task) -> bool:
        code = getattr(task.get_coro(), "cr_code", None)
        return code is not None and code.co_filename.startswith(folders)
    return [task for task in asyncio.all_tasks() if not task.done() and runs_redis(task)]


@pytest.mark.gen_test(timeout=30)
async def test_publishes_made_while_redis_is_down_are_delivered_locally_and_queued_bounded(
        connect, redis_server):
    publisher, neighbour = await connect(), await connect()
    await neighbour.subscribe("chat.queue")
    await publisher.publish("chat.queue", message(0))
    assert (await neighbour.next_event()).data == message(0)

    redis_server.kill()
    try:
        for seq in range(1, 6):  # no error frame: the publish is accepted
            assert await publisher.publish("chat.queue", message(seq)) == {"topic": "chat.queue", "duplicate": False}
        for seq in range(1, 6):
            assert (await neighbour.next_event()).data == message(seq)
    finally:
        redis_server.start()
    # Still inside one step of the event loop, so the broker has not reconnected yet:
    # this plain subscriber is on Redis before the queued publishes are sent.
    observer = redis.Redis.from_url(redis_server.url).pubsub(ignore_subscribe_messages=True)
    observer.subscribe(PREFIX + "chat.queue")
    assert observer.get_message(timeout=5) is None  # the subscribe confirmation

    async def next_from_redis() -> dict:
        found = await asyncio.get_running_loop().run_in_executor(None, lambda: observer.get_message(timeout=5))
        assert found is not None, "nothing arrived on Redis"
        origin, _, payload = found["data"].partition(b" ")
        return json.loads(payload)

    # The outbox keeps the newest 3 (max_pending=3), in order; the oldest 2 were dropped.
    assert [await next_from_redis() for _ in range(3)] == [message(3), message(4), message(5)]
    await publisher.publish("chat.queue", message(6))
    assert await next_from_redis() == message(6)
    assert (await neighbour.next_event()).data == message(6)  # once: no echo back from Redis
    await publisher.publish("chat.queue", message(7))
    assert (await neighbour.next_event()).data == message(7)
    observer.close()


@pytest.mark.gen_test(timeout=30)
async def test_gateway_close_stops_the_broker_cleanly(connect, gateway):
    client = await connect()
    await client.subscribe("chat.closing")
    await client.publish("chat.closing", message(1))
    assert (await client.next_event()).data == message(1)
    assert broker_tasks(), "the broker should be running"

    await gateway.close()
    assert broker_tasks() == []
    assert not gateway.broker.connected


@pytest.mark.gen_test(timeout=30)
async def test_gateway_close_while_redis_is_down_does_not_hang(connect, gateway, redis_server):
    client = await connect()
    await client.subscribe("chat.closing")
    redis_server.kill()
    try:
        await client.publish("chat.closing", message(1))
        assert (await client.next_event()).data == message(1)
        await gateway.close()
        assert broker_tasks() == []
    finally:
        redis_server.start()


@pytest.mark.parametrize("required, outcome", [("0", "1 skipped"), ("1", "1 error")])
def test_without_redis_server_the_redis_tests_skip_with_the_reason_unless_required(required, outcome):
    env = {**os.environ, "PATH": "/nonexistent", "DRIZZLE_REQUIRE_REDIS": required}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rsf", "-p", "no:cacheprovider", "-n", "0",
         "tests/brokers/redis/test_scaleout.py::test_an_invalid_publish_reaches_nobody_anywhere"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120,
    )
    assert "redis-server is not installed" in result.stdout, result.stdout
    assert outcome in result.stdout, result.stdout
    assert result.returncode == (0 if required == "0" else 1)


@pytest.mark.gen_test(timeout=60)
async def test_publish_then_close_finishes_every_time_and_sends_the_publish(redis_server):
    observer = redis.Redis.from_url(redis_server.url).pubsub(ignore_subscribe_messages=True)
    observer.subscribe(PREFIX + "chat.loop")
    assert observer.get_message(timeout=5) is None  # the subscribe confirmation
    rounds = 50
    for seq in range(rounds):
        broker = RedisBroker(redis_server.url, prefix=PREFIX)
        if seq % 2:  # half the brokers also listen, so both start-up paths race the close
            await broker.subscribe("chat.loop", lambda channel, data: None)
        await broker.publish("chat.loop", message(seq))
        async with asyncio.timeout(3 * broker.timeout + 1):  # close's documented bound
            await broker.close()
        assert broker_tasks() == []

    def received() -> list[dict]:
        found = []
        while len(found) < rounds and (item := observer.get_message(timeout=5)) is not None:
            found.append(json.loads(item["data"].partition(b" ")[2]))
        return found

    assert await asyncio.get_running_loop().run_in_executor(None, received) == [message(i) for i in range(rounds)]
    observer.close()


@pytest.mark.gen_test(timeout=30)
async def test_gateway_close_while_redis_is_frozen_finishes_within_its_bound(connect, gateway, redis_server):
    client = await connect()
    await client.subscribe("chat.frozen")
    redis_server.freeze()
    try:
        await client.publish("chat.frozen", message(1))
        assert (await client.next_event()).data == message(1)
        loop = asyncio.get_running_loop()
        started = loop.time()
        await gateway.close()
        assert loop.time() - started < gateway.limits.shutdown_timeout + CLOSE_HANDSHAKE_WAIT + BROKER_CLOSE_WAIT
        assert broker_tasks() == []
    finally:
        redis_server.thaw()


@pytest.mark.gen_test(timeout=30)
async def test_a_congested_local_reader_does_not_stall_redis_for_other_channels(redis_server, caplog):
    caplog.set_level(logging.WARNING, logger="drizzle_gateway")
    publisher, listener = RedisBroker(redis_server.url, prefix=PREFIX), RedisBroker(redis_server.url, prefix=PREFIX)
    try:
        heard: asyncio.Queue = asyncio.Queue()
        never = asyncio.get_running_loop().create_future()  # readers of "x" stay congested

        def congested_x(channel, data):
            heard.put_nowait((channel, data))
            return never

        await listener.subscribe("x", congested_x)
        await publisher.publish("x", 1)
        assert await asyncio.wait_for(heard.get(), 5) == ("x", 1)
        await listener.subscribe("y", lambda channel, data: heard.put_nowait((channel, data)))
        await publisher.publish("y", 2)
        await publisher.publish("x", 3)
        assert [await asyncio.wait_for(heard.get(), 5) for _ in range(2)] == [("y", 2), ("x", 3)]
        assert listener.connected
        assert not [r for r in caplog.records if "unreachable" in r.getMessage()]
    finally:
        await publisher.close()
        await listener.close()


@pytest.mark.gen_test(timeout=30)
async def test_pipelined_subscribe_then_unsubscribe_leaves_no_live_subscription(raw, connect, gateway):
    """Subscribe and unsubscribe sent back to back take effect in that order: nothing is heard, no slot is held."""
    channels = [f"chat.zombie{index}" for index in range(10)]
    socket = await raw()
    for index, channel in enumerate(channels):
        await socket.send({"request_id": 2 * index, "action": "__subscribe__", "data": {"topic": channel}})
        await socket.send({"request_id": 2 * index + 1, "action": "__unsubscribe__", "data": {"topic": channel}})
    replies = [await socket.recv() for _ in range(2 * len(channels))]
    assert sorted(reply["request_id"] for reply in replies) == list(range(2 * len(channels)))
    assert all("code" not in reply for reply in replies), replies
    session = next(iter(gateway.hub.sessions))
    assert session.channels == set()
    assert all(gateway.hub.fanout.subscribers(channel) == 0 for channel in channels)
    publisher = await connect()
    for seq, channel in enumerate(channels):
        await publisher.publish(channel, message(seq))
    marker = await socket.ask({"request_id": "last", "action": "__ping__"})
    assert marker == {"request_id": "last", "data": "pong"}  # the publishes went out before it: no event came first


@pytest.mark.gen_test(timeout=30)
async def test_pending_counts_the_batch_redis_has_not_answered(redis_server):
    """`pending` is what Redis has not answered yet: a batch sent into a frozen Redis still counts."""
    broker = RedisBroker(redis_server.url, prefix=PREFIX, timeout=5.0)
    try:
        await broker.publish("chat.frozen", message(0))  # connects; answered once sent
        await wait_until(lambda: not broker.pending, 5)
        redis_server.freeze()
        try:
            await broker.publish("chat.frozen", message(1))
            seen = set()
            loop = asyncio.get_running_loop()
            watch_until = loop.time() + 0.5  # the batch is on its way (well within the 5 s timeout), unanswered
            while loop.time() < watch_until:
                seen.add(broker.pending)
                await asyncio.sleep(0.01)
            assert seen == {1}
        finally:
            redis_server.thaw()
        await wait_until(lambda: not broker.pending, 5)
    finally:
        await broker.close()
