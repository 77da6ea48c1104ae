"""Several gateway processes sharing topics through one real redis-server.

The gateways are real subprocesses (``drizzle-gateway serve ... --redis
URL``) on their own ports; the clients are real websocket clients.
"""

from __future__ import annotations

import asyncio
import re

import pytest

from drizzle_gateway.client import Client, RemoteError
from tests.support.bulk_subscriber import BulkSubscriber
from tests.support.flow import publish_paced
from tests.support.polling import eventually
from tests.support.redis_server import GatewayProcess, gateway_processes

redis_asyncio = pytest.importorskip("redis.asyncio")


def message(author: str, seq: int, text: str = "hi") -> dict:
    return {"author": {"name": author}, "text": text, "seq": seq}



@pytest.fixture(scope="module")
def gateways(redis_server):
    """Three gateway processes on one Redis."""
    with gateway_processes(redis_server.url, 3) as processes:
        yield processes


@pytest.fixture
def redis_client(redis_server):
    """A plain Redis client, to look at what the gateways subscribed to."""
    return redis_asyncio.Redis.from_url(redis_server.url)


async def numsub(redis_client, name: str) -> int:
    return dict(await redis_client.pubsub_numsub(name))[name.encode()]


@pytest.mark.parametrize("processes", [2, 3])
@pytest.mark.gen_test(timeout=60)
async def test_publishes_from_each_process_reach_all_in_order_exactly_once(gateways, open_client, processes):
    channel = f"chat.order{processes}"
    clients = [await open_client(gateway) for gateway in gateways[:processes]]
    for client in clients:
        await client.subscribe(channel)
    per_publisher = 30

    async def publish_all(index: int, client: Client) -> None:
        for seq in range(per_publisher):
            await client.publish(channel, message(f"p{index}", seq))

    await asyncio.gather(*(publish_all(i, client) for i, client in enumerate(clients)))
    for client in clients:
        by_author: dict[str, list[int]] = {}
        for _ in range(processes * per_publisher):
            event = await client.next_event()
            by_author.setdefault(event.data["author"]["name"], []).append(event.data["seq"])
        assert by_author == {f"p{i}": list(range(per_publisher)) for i in range(processes)}

    # Every process has received every publish, so Redis has already passed
    # any echo of them along too: a duplicate would now come before these.
    for i, client in enumerate(clients):
        await client.publish(channel, message(f"end{i}", 0))
    for client in clients:
        ends = sorted([(await client.next_event()).data["author"]["name"] for _ in range(processes)])
        assert ends == [f"end{i}" for i in range(processes)]


@pytest.mark.gen_test(timeout=30)
async def test_an_invalid_publish_reaches_nobody_anywhere(gateways, open_client):
    channel = "chat.invalid"
    clients = [await open_client(gateway) for gateway in gateways]
    for client in clients:
        await client.subscribe(channel)
    publisher = clients[0]
    with pytest.raises(RemoteError) as refused:
        await publisher.publish(channel, message("bad", 1, text="x" * 101))
    assert refused.value.code == "INVALID_DATA"
    assert "text" in refused.value.details["payload"]
    # Same publisher, so per-publisher order: had the invalid one gone out, it would come first.
    await publisher.publish(channel, message("good", 2))
    for client in clients:
        event = await client.next_event()
        assert event.data == message("good", 2)


@pytest.mark.gen_test(timeout=60)
async def test_receivers_deliver_what_the_publisher_validated_without_validating_again(
        gateways, redis_server, open_client):
    strict = GatewayProcess(redis_server.url, target="tests.support.serve_app:make_strict_gateway")
    try:
        strict.wait_ready()
        receiver, publisher = await open_client(strict), await open_client(gateways[0])
        await receiver.subscribe("chat.trust")
        with pytest.raises(RemoteError) as refused:  # this process's own schema refuses long texts
            await receiver.publish("chat.trust", message("r", 1, text="hello"))
        assert refused.value.code == "INVALID_DATA"
        await publisher.publish("chat.trust", message("p", 2, text="hello"))
        assert (await receiver.next_event()).data == message("p", 2, text="hello")
    finally:
        await strict.stopped()
        strict.remove_log()


@pytest.mark.gen_test(timeout=30)
async def test_one_redis_subscription_per_channel_per_process(gateways, open_client, redis_client):
    first = [await open_client(gateways[0]) for _ in range(4)]
    second = [await open_client(gateways[1]) for _ in range(3)]
    for client in first + second:
        await client.subscribe("chat.numsub")
    await first[0].subscribe("chat.numsub-other-room")

    assert await numsub(redis_client, "drizzle:chat.numsub") == 2
    assert await numsub(redis_client, "drizzle:chat.numsub-other-room") == 1
    assert set(await redis_client.pubsub_channels("drizzle:chat.numsub*")) == {
        b"drizzle:chat.numsub", b"drizzle:chat.numsub-other-room"}

    await first[0].publish("chat.numsub", message("one", 1))
    for client in first + second:
        assert (await client.next_event()).data == message("one", 1)

    for client in first:
        await client.unsubscribe("chat.numsub")
    assert await eventually(lambda: _numsub_is(redis_client, "drizzle:chat.numsub", 1), 5)
    for client in second:
        await client.unsubscribe("chat.numsub")
    assert await eventually(lambda: _numsub_is(redis_client, "drizzle:chat.numsub", 0), 5)
    await redis_client.aclose()


async def _numsub_is(redis_client, name: str, expected: int) -> bool:
    return await numsub(redis_client, name) == expected


@pytest.mark.gen_test(timeout=60)
async def test_a_channel_prefix_keeps_apps_apart_on_one_redis(gateways, redis_server, open_client, redis_client):
    other_app = GatewayProcess(redis_server.url, "--redis-prefix", "otherapp:")
    try:
        other_app.wait_ready()
        ours, theirs = await open_client(gateways[0]), await open_client(other_app)
        await ours.subscribe("chat.shared")
        await theirs.subscribe("chat.shared")
        assert await numsub(redis_client, "otherapp:chat.shared") == 1
        assert await numsub(redis_client, "drizzle:chat.shared") == 1

        await theirs.publish("chat.shared", message("theirs", 1))
        assert (await theirs.next_event()).data == message("theirs", 1)
        await ours.publish("chat.shared", message("ours", 2))
        assert (await ours.next_event()).data == message("ours", 2)  # not theirs first
    finally:
        await other_app.stopped()
        other_app.remove_log()
        await redis_client.aclose()


@pytest.mark.gen_test(timeout=60)
async def test_redis_killed_and_restarted_while_clients_publish(gateways, redis_server, open_client):
    channel = "chat.outage"
    alice, neighbour = await open_client(gateways[0]), await open_client(gateways[0])
    bob = await open_client(gateways[1])
    for client in (alice, neighbour, bob):
        await client.subscribe(channel)
    loop = asyncio.get_running_loop()
    published: dict[str, list[tuple[float, int]]] = {"alice": [], "bob": []}
    heard: dict[str, list[tuple[str, int]]] = {"neighbour": [], "bob": []}
    stop = asyncio.Event()

    async def keep_publishing(name: str, client: Client) -> None:
        seq = 0
        while not stop.is_set():
            seq += 1
            await client.publish(channel, message(name, seq))  # an error frame raises here
            published[name].append((loop.time(), seq))
            await asyncio.sleep(0.01)

    async def keep_listening(name: str, client: Client) -> None:
        while True:
            event = await client.next_event(timeout=30)
            heard[name].append((event.data["author"]["name"], event.data["seq"]))

    def heard_after(listener: str, author: str, since: float) -> bool:
        """Did ``listener`` hear a message ``author`` published after ``since``?"""
        first = next((seq for at, seq in published[author] if at > since), None)
        return first is not None and any(a == author and seq >= first for a, seq in heard[listener])

    async def crossing(since: float) -> bool:
        return heard_after("bob", "alice", since) and heard_after("neighbour", "bob", since)

    publishers = [asyncio.ensure_future(keep_publishing(name, client))
                  for name, client in (("alice", alice), ("bob", bob))]
    listeners = [asyncio.ensure_future(keep_listening(name, client))
                 for name, client in (("neighbour", neighbour), ("bob", bob))]
    try:
        try:
            assert await eventually(lambda: crossing(0), 10)
            outages_before = [gateway.logs().count("is unreachable") for gateway in gateways[:2]]

            redis_server.kill()
            killed = loop.time()
            try:
                # Requests and local deliveries go on; the publishers get no error frame.
                async def local_goes_on() -> bool:
                    return heard_after("neighbour", "alice", killed + 0.2) and heard_after("bob", "bob", killed + 0.2)

                assert await eventually(local_goes_on, 10)
                assert await alice.ping() == "pong"
                assert await bob.call("lab", "plain", {"x": 1}) == {"kind": "plain", "data": {"x": 1}}
                await bob.subscribe("chat.outage-late")  # Redis hears of it only once it is back
            finally:
                redis_server.start()
            restarted = loop.time()

            # Cross-process delivery resumes within 2 s of Redis accepting connections again.
            assert await eventually(lambda: crossing(restarted), 2.0, interval=0.01)
            stop.set()
            await asyncio.gather(*publishers)
        finally:
            stop.set()
            await asyncio.gather(*publishers, return_exceptions=True)

        # Local delivery never stopped: every own-process message, in order, exactly once.
        async def all_local_heard() -> bool:
            return (("alice", published["alice"][-1][1]) in heard["neighbour"]
                    and ("bob", published["bob"][-1][1]) in heard["bob"])

        assert await eventually(all_local_heard, 10)
        assert [seq for a, seq in heard["neighbour"] if a == "alice"] == [seq for _, seq in published["alice"]]
        assert [seq for a, seq in heard["bob"] if a == "bob"] == [seq for _, seq in published["bob"]]

        await alice.publish("chat.outage-late", message("alice", 1000))

        async def late_heard() -> bool:
            return ("alice", 1000) in heard["bob"]

        assert await eventually(late_heard, 5)
    finally:
        for listener in listeners:
            listener.cancel()
        await asyncio.gather(*listeners, return_exceptions=True)

    # The outage was logged once per process, not once per publish.
    async def logged_back() -> bool:
        return all("is back" in gateway.logs() for gateway in gateways[:2])

    assert await eventually(logged_back, 5)
    outages = [gateway.logs().count("is unreachable") - before
               for gateway, before in zip(gateways[:2], outages_before, strict=True)]
    assert outages == [1, 1]


@pytest.mark.gen_test(timeout=60)
async def test_a_frozen_redis_never_blocks_the_gateway(gateways, redis_server, open_client):
    channel = "chat.frozen"
    alice = await open_client(gateways[0], timeout=5)
    alice_neighbour = await open_client(gateways[0], timeout=5)
    bob = await open_client(gateways[1], timeout=5)
    for client in (alice, alice_neighbour, bob):
        await client.subscribe(channel)

    outages_before = gateways[0].logs().count("is unreachable")
    redis_server.freeze()  # connections stay open; Redis answers nothing
    try:
        for seq in range(3):
            await alice.publish(channel, message("alice", seq))
            assert (await alice_neighbour.next_event()).data == message("alice", seq)

        async def gave_up() -> bool:  # past the broker's call timeout: it gives up on Redis and retries
            return gateways[0].logs().count("is unreachable") > outages_before

        assert await eventually(gave_up, 10)
        assert await alice.ping() == "pong"
        assert await bob.ping() == "pong"
        await alice_neighbour.subscribe("chat.frozen-late")
        await alice.publish(channel, message("alice", 3))
        assert (await alice_neighbour.next_event()).data == message("alice", 3)
    finally:
        redis_server.thaw()

    async def bob_hears_alice() -> bool:
        await alice.publish(channel, message("alice", 99))
        try:
            while True:
                if (await bob.next_event(timeout=0.1)).data["seq"] == 99:
                    return True
        except TimeoutError:
            return False

    assert await eventually(bob_hears_alice, 10)


@pytest.mark.timeout(180)
@pytest.mark.gen_test(timeout=170)
async def test_a_thousand_subscribers_on_two_processes_receive_a_thousand_messages_from_a_third(
        gateways, open_client):
    subscribers = [BulkSubscriber(gateways[i % 2].url) for i in range(1000)]
    try:
        await asyncio.gather(*(subscriber.subscribe("chat.crowd") for subscriber in subscribers))
        publisher = await open_client(gateways[2])

        async def publish_all() -> None:
            for seq in range(1000):
                await publisher.publish("chat.crowd", message("crowd", seq, text="x"))

        await asyncio.gather(publish_all(), *(subscriber.frames(1000) for subscriber in subscribers))
        seq = re.compile(rb'"seq":(\d+)')
        for subscriber in subscribers:
            received = [int(found) for found in seq.findall(b"\n".join(subscriber.payloads))]
            assert received == list(range(1000))
    finally:
        for subscriber in subscribers:
            subscriber.close()


@pytest.mark.gen_test(timeout=60)
async def test_sigterm_shuts_the_broker_down_cleanly(redis_server, open_client):
    gateway = GatewayProcess(redis_server.url).wait_ready()
    try:
        client = await open_client(gateway)
        await client.subscribe("chat.bye")
        await client.publish("chat.bye", message("me", 1))
        assert (await client.next_event()).data == message("me", 1)
        assert await gateway.stopped() == 0
        logs = gateway.logs()
        for trouble in ("Task was destroyed", "never awaited", "Traceback", "Unclosed"):
            assert trouble not in logs
        assert "shutting down" in logs
    finally:
        await gateway.stopped()
        gateway.remove_log()


@pytest.mark.gen_test(timeout=60)
async def test_eight_publishers_within_their_limits_close_no_fast_reader_in_another_process(redis_server,
                                                                                           open_client):
    flow = [GatewayProcess(redis_server.url, target="tests.support.serve_app:make_flow_gateway") for _ in range(2)]
    readers = [BulkSubscriber(flow[1].url) for _ in range(3)]
    try:
        for process in flow:
            process.wait_ready()
        await asyncio.gather(*(reader.subscribe("bulk") for reader in readers))
        publishers = [await open_client(flow[0]) for _ in range(8)]
        per_publisher, body = 160, "b" * 1000  # 80 msg/s of 1 KB each for 2 s, within every limit

        await asyncio.gather(*(publish_paced(client, i * per_publisher, per_publisher, 80, body)
                               for i, client in enumerate(publishers)),
                             *(reader.frames(8 * per_publisher) for reader in readers))
        for reader in readers:
            assert len(reader.payloads) == 8 * per_publisher
        assert "slow consumer" not in flow[1].logs()
    finally:
        for reader in readers:
            reader.close()
        for process in flow:
            await process.stopped()
            process.remove_log()
