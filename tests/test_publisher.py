"""`Publisher`: publishing from a process that serves nobody, to every gateway process on one Redis.

Two real gateway processes (``drizzle-gateway serve ... --redis URL``) run
on a redis-server the module starts; a client subscribes through each.
Events published by a `Publisher` in this process (asyncio and blocking)
must reach both subscribers exactly once, in order, with consecutive
offsets on a topic with history, as the same frame a gateway's own publish
gives. An idempotency key makes a repeat reach nobody, whichever process
or publisher it goes through, until its window has passed.
"""

from __future__ import annotations

import asyncio
import json

import pytest
from marshmallow import ValidationError

from drizzle_gateway import Publisher
from drizzle_gateway.brokers import Receipt
from drizzle_gateway.client import Client
from tests.support.polling import wait_until
from tests.support.redis_server import command_calls, gateway_processes
from tests.support.serve_app import make_history_gateway

redis = pytest.importorskip("redis")

EVENTS = 40
"""Events each test publishes from the publisher."""


def message(seq: int, author: str = "worker", text: str = "hi") -> dict:
    return {"author": {"name": author}, "text": text, "seq": seq}


@pytest.fixture(scope="module")
def gateways(redis_server):
    """Two gateway processes on one Redis, serving ``chat.{room}`` and ``feed.{room}`` (history)."""
    with gateway_processes(redis_server.url, 2, target="tests.support.serve_app:make_history_gateway") as processes:
        yield processes


@pytest.fixture
def publisher(redis_server, io_loop):
    """A publisher of the gateways' topics, on their Redis and prefix."""
    made = Publisher(topics=make_history_gateway().topics, redis=redis_server.url, prefix="drizzle:")
    yield made
    io_loop.run_sync(made.aclose)


async def subscribed(gateways, open_client, channel: str) -> list[Client]:
    """A client subscribed to ``channel`` through each gateway process."""
    clients = [await open_client(gateway) for gateway in gateways]
    for client in clients:
        await client.subscribe(channel)
    return clients


async def received(client: Client, count: int) -> list:
    return [await client.next_event(5) for _ in range(count)]


async def nothing_more(client: Client, channel: str, publisher: Publisher) -> None:
    """Nothing else arrived: the next event is a sentinel published now."""
    await publisher.publish(channel, message(-1, text="end"))
    assert (await client.next_event(5)).data == message(-1, text="end")


@pytest.mark.parametrize("mode", ["async", "sync"])
@pytest.mark.gen_test(timeout=60)
async def test_every_event_reaches_both_processes_once_in_order_with_consecutive_offsets(
        gateways, open_client, publisher, mode):
    channel = f"feed.worker-{mode}"
    clients = await subscribed(gateways, open_client, channel)
    start = [client.position(channel) for client in clients]
    receipts = []
    for seq in range(EVENTS):
        if mode == "async":
            receipts.append(await publisher.publish("feed.{room}", message(seq), room=f"worker-{mode}"))
        else:  # the blocking client, off the loop, as a Django view or a Celery task would call it
            receipts.append(await asyncio.get_running_loop().run_in_executor(
                None, lambda seq=seq: publisher.publish_sync(channel, message(seq))))
    for client, begun in zip(clients, start, strict=True):
        events = await received(client, EVENTS)
        assert [event.data for event in events] == [message(seq) for seq in range(EVENTS)]
        assert [event.offset for event in events] == list(range(begun.offset + 1, begun.offset + EVENTS + 1))
        await nothing_more(client, channel, publisher)
    assert [receipt.position.offset for receipt in receipts] == list(range(start[0].offset + 1,
                                                                           start[0].offset + EVENTS + 1))
    assert not any(receipt.duplicate for receipt in receipts)


@pytest.mark.parametrize("mode", ["async", "sync"])
@pytest.mark.gen_test(timeout=60)
async def test_plain_events_reach_both_processes_once_in_order(gateways, open_client, publisher, mode):
    channel = f"chat.worker-{mode}"
    clients = await subscribed(gateways, open_client, channel)
    for seq in range(EVENTS):
        if mode == "async":
            assert await publisher.publish(channel, message(seq)) == Receipt()
        else:
            await asyncio.get_running_loop().run_in_executor(None, publisher.publish_sync, channel, message(seq))
    for client in clients:
        assert [event.data for event in await received(client, EVENTS)] == [message(seq) for seq in range(EVENTS)]
        await nothing_more(client, channel, publisher)


@pytest.mark.parametrize("channel", ["chat.same-frame", "feed.same-frame"])
@pytest.mark.gen_test(timeout=60)
async def test_the_event_frame_is_the_one_a_gateways_own_publish_gives(gateways, raw_socket, open_client, publisher,
                                                                       channel):
    reader = await raw_socket(gateways[1])
    assert "data" in await reader.ask({"request_id": 1, "action": "__subscribe__", "data": {"topic": channel}})
    through_gateway = await open_client(gateways[0])
    payload = {"author": {"name": "ada", "email": "ignored@example.com"}, "text": "same", "seq": 1}
    await through_gateway.publish(channel, payload)
    from_gateway = await reader.ws.read_message()
    await publisher.publish(channel, payload)
    from_publisher = await reader.ws.read_message()
    if channel.startswith("feed."):  # the next offset, otherwise the very same text
        from_gateway = from_gateway.replace('"offset":1', '"offset":2')
    assert from_publisher == from_gateway


@pytest.mark.gen_test(timeout=60)
async def test_a_refused_payload_raises_before_anything_is_sent(gateways, open_client, publisher):
    channel = "feed.refused"
    [client] = await subscribed(gateways[:1], open_client, channel)
    with pytest.raises(ValidationError) as caught:
        await publisher.publish(channel, {"author": {"name": "x"}, "text": "x" * 101})
    assert "text" in caught.value.messages
    with pytest.raises(ValidationError):
        publisher.publish_sync(channel, {"text": 1})
    with pytest.raises(ValidationError) as undeclared:
        await publisher.publish("nowhere", message(1))
    assert undeclared.value.messages == {"topic": ["topic 'nowhere' is not declared"]}
    with pytest.raises(ValidationError) as bad_key:
        await publisher.publish(channel, message(1), idempotency_key="a:b")
    assert list(bad_key.value.messages) == ["idempotency_key"]
    await nothing_more(client, channel, publisher)
    assert client.position(channel).offset == 1  # nothing was numbered before the sentinel


@pytest.mark.parametrize("channel", ["chat.keyed", "feed.keyed"])
@pytest.mark.gen_test(timeout=60)
async def test_a_repeated_key_reaches_nobody_whichever_process_or_publisher_it_goes_through(
        gateways, open_client, publisher, channel):
    clients = await subscribed(gateways, open_client, channel)
    first = await publisher.publish(channel, message(1), idempotency_key="order-1")
    again = publisher.publish_sync(channel, message(2), idempotency_key="order-1")
    assert not first.duplicate and again.duplicate and again.position == first.position
    # Clients publishing through each process: the first one's key is a repeat on the other
    through = [await open_client(gateway) for gateway in gateways]
    fresh = await through[0].publish(channel, message(3, "ada"), idempotency_key="k-2")
    repeat = await through[1].publish(channel, message(4, "ada"), idempotency_key="k-2")
    assert (fresh["duplicate"], repeat["duplicate"]) == (False, True)
    assert (await through[1].publish(channel, message(5, "ada"), idempotency_key="order-1"))["duplicate"]
    if channel.startswith("feed."):
        assert repeat["offset"] == fresh["offset"] == first.position.offset + 1
    for client in clients:
        assert [event.data["seq"] for event in await received(client, 2)] == [1, 3]
        await nothing_more(client, channel, publisher)


@pytest.mark.parametrize("channel", ["chat.window", "feed.window"])
@pytest.mark.gen_test(timeout=60)
async def test_a_key_is_delivered_again_once_its_window_has_passed(gateways, open_client, redis_server, channel):
    short = Publisher(topics=make_history_gateway().topics, redis=redis_server.url, idempotency_window=0.5)
    inspect = redis.Redis.from_url(redis_server.url)
    try:
        [client] = await subscribed(gateways[:1], open_client, channel)
        assert not (await short.publish(channel, message(1), idempotency_key="w")).duplicate
        assert (await short.publish(channel, message(2), idempotency_key="w")).duplicate
        key = f"drizzle:i:{channel}:w"
        assert 0 < inspect.pttl(key) <= 500
        await wait_until(lambda: not inspect.exists(key), 5)
        assert not (await short.publish(channel, message(3), idempotency_key="w")).duplicate
        assert [event.data["seq"] for event in await received(client, 2)] == [1, 3]
        await nothing_more(client, channel, short)
    finally:
        inspect.close()
        await short.aclose()


@pytest.mark.gen_test(timeout=60)
async def test_the_worker_example_publishes_todos_every_process_delivers_once(gateways, open_client, redis_server):
    import subprocess
    import sys

    from examples.worker import todo
    from tests.support.redis_server import REPO

    clients = await subscribed(gateways, open_client, "todos")

    def run_worker() -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "examples.worker", "--redis", redis_server.url, "--count", "3"],
                              cwd=REPO, capture_output=True, text=True, timeout=30)

    done = await asyncio.get_running_loop().run_in_executor(None, run_worker)
    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines() == [f"todo {1000 + n} published" for n in (1, 2, 3)]
    again = await asyncio.get_running_loop().run_in_executor(None, run_worker)  # the same keys: nothing twice
    assert again.stderr.splitlines() == [f"todo {1000 + n} was published already" for n in (1, 2, 3)]
    for client in clients:
        assert [event.data for event in await received(client, 3)] == [todo(n) for n in (1, 2, 3)]
        await client.call("todos", "create", {"title": "after"})  # the next event is the gateway's own
        assert (await client.next_event(5)).data["title"] == "after"


@pytest.mark.parametrize("mode", ["async", "sync"])
@pytest.mark.gen_test(timeout=30)
async def test_scripts_go_by_their_sha_and_are_loaded_again_after_a_script_flush(redis_server, publisher, mode):
    import redis.asyncio

    observer = redis.asyncio.Redis.from_url(redis_server.url)
    channel, room = f"feed.sha-{mode}", f"chat.sha-{mode}"
    try:
        await observer.script_flush()  # as after a restart of Redis: neither script is held
        await observer.config_resetstat()
        for seq in range(4):  # with history (APPEND), then keyed without history (ONCE)
            for topic, key in ((channel, None), (room, f"k{seq}")):
                if mode == "async":
                    await publisher.publish(topic, message(seq), idempotency_key=key)
                else:
                    publisher.publish_sync(topic, message(seq), idempotency_key=key)
        calls = await command_calls(observer)
        # each script's text goes once (after NOSCRIPT); every publish goes by its SHA
        assert (calls.get("eval", 0), calls.get("evalsha", 0)) == (2, 8)
        entries = await observer.xrange(f"drizzle:h:{channel}")
        assert [json.loads(fields[b"d"])["seq"] for _, fields in entries] == [0, 1, 2, 3]
    finally:
        await observer.aclose()
