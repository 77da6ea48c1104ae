"""Channels with history over Redis Streams: two gateway processes, one real redis-server.

Offsets and epochs live in Redis, so every process agrees on them and a
client recovers on any process. Redis is killed (-9) and restarted under a
running publisher: without persistence, a subscriber either hears every
acknowledged publish or is told its history was lost; with
``--appendonly yes --appendfsync always`` nothing is lost at all.
"""

from __future__ import annotations

import asyncio
import logging

import pytest
from redis.asyncio import Redis as AsyncRedis

from drizzle_gateway.brokers import BrokerUnavailable
from drizzle_gateway.brokers.redis.broker import RedisBroker
from drizzle_gateway.client import Client, Position, RemoteError
from drizzle_gateway.wire.history import Retention
from drizzle_gateway.wire.recovery import Gap
from tests.support.polling import eventually, wait_until
from tests.support.redis_server import GatewayProcess, RedisServer, gateway_processes

pytest.importorskip("redis")
logger = logging.getLogger("tests.redis_history")

TARGET = "tests.support.serve_app:make_history_gateway"


def message(seq: int, author: str = "ada") -> dict:
    return {"author": {"name": author}, "text": "hi", "seq": seq}


@pytest.fixture(scope="module", params=[False, True], ids=["no-persistence", "appendonly"])
def redis_server(request):
    server = RedisServer(appendonly=request.param).start()
    yield server
    server.stop()



@pytest.fixture(scope="module")
def gateways(redis_server):
    """Two gateway processes on the module's Redis."""
    with gateway_processes(redis_server.url, 2, TARGET) as processes:
        yield processes


async def take(client: Client, count: int) -> list:
    return [await client.next_event(10) for _ in range(count)]


@pytest.mark.gen_test(timeout=60)
async def test_every_process_agrees_on_offsets_and_epoch(gateways, open_client):
    first, second = await open_client(gateways[0]), await open_client(gateways[1])
    one = await first.subscribe("feed.agree")
    two = await second.subscribe("feed.agree")
    assert one["epoch"] == two["epoch"]
    for seq in range(1, 11):  # alternately through each process
        await (first if seq % 2 else second).publish("feed.agree", message(seq))
    heard = [[(event.offset, event.data["seq"]) for event in await take(client, 10)] for client in (first, second)]
    assert heard[0] == heard[1]  # the same numbering everywhere
    assert [offset for offset, _ in heard[0]] == list(range(one["offset"] + 1, one["offset"] + 11))
    seqs = [seq for _, seq in heard[0]]
    assert [s for s in seqs if s % 2] == [1, 3, 5, 7, 9] and [s for s in seqs if not s % 2] == [2, 4, 6, 8, 10]
    history = await first.request({"action": "__history__", "data": {"topic": "feed.agree", "limit": 3}})
    assert [(event["offset"], event["data"]["seq"]) for event in history["events"]] == heard[0][-3:]


@pytest.mark.gen_test(timeout=60)
async def test_a_client_recovers_on_another_process(gateways, open_client):
    client = await open_client(gateways[0])
    publisher = await open_client(gateways[1])
    await client.subscribe("feed.move")
    await publisher.publish("feed.move", message(1))
    assert [event.data["seq"] for event in await take(client, 1)] == [1]
    client._ws.protocol.stream.close()  # dropped, as a phone changing network
    for seq in range(2, 7):
        await publisher.publish("feed.move", message(seq))
    client.url = gateways[1].url  # the load balancer sends it to the other process
    replies = await client.reconnect()
    assert replies["feed.move"]["recovered"] is True
    await publisher.publish("feed.move", message(7))
    assert [event.data["seq"] for event in await take(client, 6)] == [2, 3, 4, 5, 6, 7]


@pytest.mark.gen_test(timeout=90)
@pytest.mark.timeout(120)
async def test_redis_killed_and_restarted_under_a_publisher(gateways, redis_server, open_client):
    """kill -9 Redis mid-stream, restart it: each subscriber hears every acknowledged publish or is told."""
    channel = "feed.outage"
    publisher = await open_client(gateways[0])
    listeners = {"same process": await open_client(gateways[0]), "other process": await open_client(gateways[1])}
    epochs = {name: (await client.subscribe(channel))["epoch"] for name, client in listeners.items()}
    acknowledged: list[int] = []
    heard: dict[str, list[int]] = {name: [] for name in listeners}
    told: dict[str, list[str]] = {name: [] for name in listeners}
    loop = asyncio.get_running_loop()

    async def listen(name: str, client: Client) -> None:
        while True:
            event = await client.next_event(60)
            heard[name].append(event.data["seq"])
            if event.epoch is not None:
                told[name].append(event.epoch)

    tasks = [asyncio.ensure_future(listen(name, client)) for name, client in listeners.items()]
    try:
        for seq in range(1, 101):
            await publisher.publish(channel, message(seq))
            acknowledged.append(seq)
            await asyncio.sleep(0.005)
        redis_server.kill()  # mid-stream: the last publishes may be in flight anywhere
        killed_at = loop.time()
        for seq in range(101, 151):  # queued by the publishing process while Redis is down
            await publisher.publish(channel, message(seq))
            acknowledged.append(seq)
            await asyncio.sleep(0.005)
        redis_server.start()
        for seq in range(151, 201):
            await publisher.publish(channel, message(seq))
            acknowledged.append(seq)
            await asyncio.sleep(0.005)
        assert await eventually(lambda: _heard_all(heard, 200), 20), (
            f"after {loop.time() - killed_at:.1f}s: {[len(h) for h in heard.values()]} heard")
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    for name in listeners:
        lost = sorted(set(acknowledged) - set(heard[name]))
        duplicated = len(heard[name]) - len(set(heard[name]))
        logger.info("appendonly=%s %s: lost %d, duplicated %d, told history lost %d times",
                    redis_server.appendonly, name, len(lost), duplicated, len(told[name]))
        assert duplicated == 0
        assert heard[name] == sorted(heard[name]), "in publish order"
        assert set(range(101, 201)) <= set(heard[name]), "publishes queued during the outage reach everyone"
        assert not lost or told[name], f"{name} lost {lost} without being told"
        if redis_server.appendonly:
            assert lost == [] and told[name] == []
    if not redis_server.appendonly:  # Redis lost every key: a new epoch, and the subscribers were told
        assert all(told[name] and told[name][0] != epochs[name] for name in listeners)


async def _heard_all(heard: dict[str, list[int]], last: int) -> bool:
    return all(last in seqs for seqs in heard.values())


@pytest.mark.gen_test(timeout=90)
@pytest.mark.timeout(120)
async def test_the_python_client_recovers_across_a_graceful_restart(redis_server, gateways, open_client):
    """SIGTERM the client's gateway process, start a new one: reconnect() replays what was published meanwhile."""
    restarting = GatewayProcess(redis_server.url, target=TARGET).wait_ready()
    try:
        client = await open_client(restarting)
        publisher = await open_client(gateways[0])
        await client.subscribe("feed.restart", ["seq"])
        await publisher.publish("feed.restart", message(1))
        assert [event.data for event in await take(client, 1)] == [{"seq": 1}]
        assert await restarting.stopped() == 0
        for seq in range(2, 22):
            await publisher.publish("feed.restart", message(seq))
        restarted = GatewayProcess(redis_server.url, target=TARGET).wait_ready()
        try:
            client.url = restarted.url
            replies = await client.reconnect()
            assert replies["feed.restart"]["recovered"] is True
            await publisher.publish("feed.restart", message(22))
            assert [event.data["seq"] for event in await take(client, 21)] == list(range(2, 23))
            with pytest.raises(asyncio.TimeoutError):
                await client.next_event(0.3)
        finally:
            await restarted.stopped()
            restarted.remove_log()
    finally:
        await restarting.stopped()
        restarting.remove_log()


@pytest.mark.gen_test(timeout=60)
@pytest.mark.timeout(90)
async def test_subscribing_while_redis_is_down_is_live_but_not_recovered(gateways, redis_server, open_client):
    publisher = await open_client(gateways[0])
    client = await open_client(gateways[1])
    first = await client.subscribe("feed.down")
    await publisher.publish("feed.down", message(1))
    assert [event.offset for event in await take(client, 1)] == [first["offset"] + 1]
    again = await open_client(gateways[1])
    redis_server.kill()
    try:
        reply = await again.subscribe("feed.elsewhere", since=Position(first["epoch"], 0))
        assert reply == {"topic": "feed.elsewhere", "recovered": False}  # no error frame: live anyway
        with pytest.raises(RemoteError) as unavailable:  # the history itself cannot be read meanwhile
            await again.request({"action": "__history__", "data": {"topic": "feed.down"}})
        assert unavailable.value.code == "UNAVAILABLE"
    finally:
        redis_server.start()
    await publisher.publish("feed.elsewhere", message(2))
    event = await again.next_event(15)
    assert event.data["seq"] == 2 and event.epoch is not None and event.offset >= 1
    assert again.position("feed.elsewhere") == Position(event.epoch, event.offset)


@pytest.mark.gen_test(timeout=30)
async def test_a_resent_publish_is_numbered_once(redis_server):
    """A batch resent after a failed connection (Redis may have applied it already) is applied once."""
    from redis.asyncio import Redis

    from drizzle_gateway.brokers.redis import streams as redis_streams
    from drizzle_gateway.wire.history import Retention

    client = Redis.from_url(redis_server.url)
    try:
        retention = Retention(10)
        args = redis_streams.append_args("resend:", "feed.x", b'{"seq":1}', retention, "origin-a", 1)
        assert (await client.eval(redis_streams.APPEND, *args)).endswith(b":1")  # its record: " <epoch>:1"
        assert await client.eval(redis_streams.APPEND, *args) == 0  # the same publish again
        later = redis_streams.append_args("resend:", "feed.x", b'{"seq":2}', retention, "origin-a", 2)
        other = redis_streams.append_args("resend:", "feed.x", b'{"seq":1}', retention, "origin-b", 1)
        assert (await client.eval(redis_streams.APPEND, *later)).endswith(b":2")
        assert (await client.eval(redis_streams.APPEND, *other)).endswith(b":3")  # numbering is per process
        assert await client.xlen("resend:h:feed.x") == 3
    finally:
        await client.aclose()


@pytest.mark.gen_test(timeout=30)
async def test_a_gap_whose_read_fails_is_read_again_not_skipped():
    server = RedisServer().start()
    retention = Retention(100)
    reader, writer = RedisBroker(server.url), RedisBroker(server.url)
    got: list[int] = []
    try:
        await reader.subscribe("feed", lambda channel, data, position=None: got.append(position.offset))
        await reader.position("feed", retention)
        for n in (1, 2, 3):
            await writer.publish_logged("feed", {"n": n}, retention)
        await eventually_equal(lambda: got, [1, 2, 3])
        name = reader.prefix + "feed"
        await reader._reader.pubsub.unsubscribe(name)  # the reader misses 4 and 5 on pub/sub ...
        await listeners_become(server, name, 0)
        for n in (4, 5):
            await writer.publish_logged("feed", {"n": n}, retention)
        async with asyncio.timeout(10):  # they reached Redis (a publish is sent by the broker's outbox)
            await writer._sender.idle.wait()
        await reader._reader.pubsub.subscribe(name)
        await listeners_become(server, name, 1)
        history, failures = reader.history, []

        async def failing_once(*args, **kwargs):  # ... and its first read of the gap fails (a Redis blip)
            if not failures:
                failures.append(True)
                raise BrokerUnavailable("simulated timeout")
            return await history(*args, **kwargs)

        reader.history = failing_once
        for n in (6, 7):
            await writer.publish_logged("feed", {"n": n}, retention)
        await eventually_equal(lambda: got, [1, 2, 3, 4, 5, 6, 7])
        assert failures == [True]
    finally:
        await reader.close()
        await writer.close()
        server.stop()


class Heard:
    """What a `RedisBroker` listener was handed on one channel: offsets of events, and gaps (first, last)."""

    def __init__(self) -> None:
        self.offsets: list[int] = []
        self.gaps: list[tuple[int, int]] = []

    def __call__(self, channel: str, data, position=None) -> None:
        if isinstance(data, Gap):
            self.gaps.append((data.first, data.last))
        else:
            self.offsets.append(position.offset)


async def drained(broker: RedisBroker) -> None:
    """Wait (10 s at most) until ``broker`` has sent every queued publish to Redis."""
    await wait_until(lambda: not broker.pending, 10)


@pytest.mark.gen_test(timeout=30)
async def test_a_reconnect_catch_up_outrun_by_a_flush_announces_only_what_pubsub_does_not_carry():
    """The stream is trimmed past the catch-up's start by publishes pub/sub is already carrying: those are not lost."""
    server = RedisServer().start()
    retention = Retention(100)
    reader, writer = RedisBroker(server.url), RedisBroker(server.url)
    heard = Heard()
    try:
        await reader.subscribe("feed", heard)
        await reader.position("feed", retention)
        for n in (1, 2, 3):
            await writer.publish_logged("feed", {"n": n}, retention)
        await eventually_equal(lambda: heard.offsets, [1, 2, 3])
        history, flushed = reader.history, []

        async def outrun(*args, **kwargs):  # the reconnected reader's first read comes after a flush of 300
            if not flushed:
                flushed.append(True)
                await listeners_become(server, reader.prefix + "feed", 1)  # re-subscribed
                for n in range(6, 306):
                    await writer.publish_logged("feed", {"n": n}, retention)
                await drained(writer)
            return await history(*args, **kwargs)

        reader.history = outrun
        name = reader.prefix + "feed"
        await reader._reader.pubsub.unsubscribe(name)  # the reader misses 4 and 5 on pub/sub ...
        await listeners_become(server, name, 0)
        for n in (4, 5):
            await writer.publish_logged("feed", {"n": n}, retention)
        await drained(writer)
        killer = AsyncRedis.from_url(server.url)
        try:
            await killer.client_kill_filter(_type="pubsub")  # ... and its connection breaks
        finally:
            await killer.aclose()
        await eventually_equal(lambda: heard.offsets, [1, 2, 3, *range(6, 306)])
        assert flushed == [True] and heard.gaps == [(4, 5)]  # trimmed while nobody here listened: announced
    finally:
        await reader.close()
        await writer.close()
        server.stop()


@pytest.mark.gen_test(timeout=30)
async def test_a_publish_timed_out_in_a_frozen_redis_does_not_cost_the_publishing_process_its_live_events():
    """Redis applies a batch that timed out once it resumes: the publishing process hears it live, as the others do."""
    server = RedisServer().start()
    retention = Retention(100)
    publishing, other, writer = (RedisBroker(server.url) for _ in range(3))
    heard = {"publishing": Heard(), "other": Heard()}
    flushed: list[bool] = []

    async def flush() -> None:  # publishes that trim the history past the batch, once
        if not flushed:
            flushed.append(True)
            for n in range(11, 311):
                await writer.publish_logged("feed", {"n": n}, retention)
            await drained(writer)

    history = publishing.history

    async def outrun(*args, **kwargs):  # a catch-up read (after a reconnect) comes after the flush
        await flush()
        return await history(*args, **kwargs)

    publishing.history = outrun
    try:
        for name, broker in (("publishing", publishing), ("other", other)):
            await broker.subscribe("feed", heard[name])
            await broker.position("feed", retention)
        await writer.position("feed", retention)  # connected
        server.freeze()
        try:
            for n in range(1, 11):
                await publishing.publish_logged("feed", {"n": n}, retention)
            await wait_until(lambda: publishing._link.outage_since is not None, 10)  # the batch was sent and timed out
        finally:
            server.thaw()
        await wait_until(lambda: len(heard["other"].offsets) >= 10, 10)  # Redis resumes: it applies the batch it holds
        await flush()
        for name in heard:
            await eventually_equal(lambda name=name: heard[name].offsets, list(range(1, 311)))
            assert heard[name].gaps == []
    finally:
        for broker in (publishing, other, writer):
            await broker.close()
        server.stop()


async def eventually_equal(value, expected, timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while value() != expected:
            assert len(value()) <= len(expected) and value() == expected[:len(value())], value()
            await asyncio.sleep(0.02)


async def listeners_become(server: RedisServer, name: str, count: int) -> None:
    """Wait until Redis counts ``count`` pub/sub subscribers of ``name``."""
    client = AsyncRedis.from_url(server.url)
    try:
        async def counted() -> bool:
            return dict(await client.pubsub_numsub(name)).get(name.encode(), 0) == count

        assert await eventually(counted, 10, interval=0.01), f"Redis never counted {count} subscribers of {name}"
    finally:
        await client.aclose()


class Tally:
    """What one subscriber heard on a channel with history, read off the raw frames."""

    def __init__(self, position: tuple[str, int]) -> None:
        self.epoch, self.last = position
        self.seqs: list[int] = []
        self.gaps: list[tuple[int, int]] = []
        self.problems: list[str] = []

    def take(self, frame: dict) -> None:
        """Check one event frame against the invariant: the next offset, or an announced gap starting there."""
        if frame.get("epoch", self.epoch) != self.epoch:
            self.problems.append(f"epoch changed to {frame['epoch']} after offset {self.last}")
        if "gap" in frame:
            gap = frame["gap"]
            if gap["from"] != self.last + 1 or gap["to"] < gap["from"] or "data" in frame:
                self.problems.append(f"after offset {self.last}: a bad gap notice {frame}")
            self.gaps.append((gap["from"], gap["to"]))
            self.last = gap["to"]
            return
        if frame["offset"] != self.last + 1:
            self.problems.append(f"offset {frame['offset']} followed {self.last} silently")
        self.last = frame["offset"]
        self.seqs.append(frame["data"]["seq"])

    @property
    def announced(self) -> int:
        return sum(last - first + 1 for first, last in self.gaps)


@pytest.mark.gen_test(timeout=40)
async def test_a_backlog_larger_than_the_history_after_a_frozen_redis_is_announced_not_skipped(
        gateways, redis_server, open_client, raw_socket):
    """SIGSTOP Redis while a publisher outruns the 100 events kept: each offset arrives once, in order, or in a gap."""
    channel = "short.freeze"
    publisher = await open_client(gateways[0])
    tallies: dict[str, Tally] = {}
    sockets = {"same process": await raw_socket(gateways[0]), "other process": await raw_socket(gateways[1])}
    for name, socket in sockets.items():
        reply = await socket.ask({"request_id": 1, "action": "__subscribe__", "data": {"topic": channel}})
        tallies[name] = Tally((reply["data"]["epoch"], reply["data"]["offset"]))
    published = 0
    loop = asyncio.get_running_loop()

    async def listen(name: str, socket) -> None:
        while True:
            tallies[name].take(await socket.recv())

    async def publish_for(seconds: float) -> None:
        nonlocal published
        deadline = loop.time() + seconds
        while loop.time() < deadline:
            for _ in range(10):
                published += 1
                await publisher.publish(channel, message(published))
            await asyncio.sleep(0.02)  # about 400 a second: a backlog of far more than 100 builds in the freeze

    async def last_numbered() -> int | None:
        page = await publisher.request({"action": "__history__", "data": {"topic": channel, "limit": 1}})
        return page["offset"] if page["events"] and page["events"][-1]["data"]["seq"] == published else None

    listeners = asyncio.gather(*(listen(name, socket) for name, socket in sockets.items()))
    try:
        await publish_for(0.5)
        redis_server.freeze()
        try:
            await publish_for(3.0)
        finally:
            redis_server.thaw()
        await publish_for(1.0)
        target = await eventually(last_numbered, 10)
        assert target is not None, "the last publish never reached redis"

        async def all_caught_up() -> bool:
            return all(tally.last >= target for tally in tallies.values())

        assert await eventually(all_caught_up, 10), {
            name: (tally.last, target, len(tally.seqs), tally.announced, tally.problems[:5])
            for name, tally in tallies.items()}
    finally:
        listeners.cancel()
        await asyncio.gather(listeners, return_exceptions=True)
    for name, tally in tallies.items():
        duplicated = len(tally.seqs) - len(set(tally.seqs))
        logger.info("appendonly=%s %s: published %d, delivered %d, announced lost %d, duplicated %d",
                    redis_server.appendonly, name, published, len(tally.seqs), tally.announced, duplicated)
        assert tally.problems == [], f"{name}: {tally.problems[:5]}"
        assert duplicated == 0 and tally.seqs == sorted(tally.seqs)
        assert tally.seqs[-1] == published and len(tally.seqs) + tally.announced == published
    # The freeze costs the publishing process's subscriber no more than the other's: a failed publish leaves the
    # subscriber connection alone, and a reconnect's catch-up never announces what pub/sub still carries.
    assert tallies["same process"].announced <= tallies["other process"].announced

# -- what reads cost Redis: no key, no full pool ------------------------------------------------------


async def keys_without_ttl(client, pattern: str) -> tuple[int, list[bytes]]:
    """How many keys match ``pattern`` (SCAN), and those of them that never expire (TTL -1)."""
    found = [key async for key in client.scan_iter(match=pattern, count=1000)]
    return len(found), [key for key in found if await client.ttl(key) == -1]


@pytest.mark.gen_test(timeout=60)
async def test_history_reads_write_no_key_and_every_key_written_expires():
    from drizzle_gateway.testing import TestClient
    from tests.support.serve_app import make_history_gateway

    server = RedisServer().start()
    gateway = make_history_gateway()
    gateway.use_broker(RedisBroker(server.url, prefix="audit:"))
    redis = AsyncRedis.from_url(server.url)
    try:
        async with TestClient(gateway) as client:
            for room in range(1000):
                reply = await client.request({"action": "__history__", "data": {"topic": f"feed.fresh{room}"}})
                assert reply["events"] == [] and reply["offset"] == 0
            assert await keys_without_ttl(redis, "audit:*") == (0, [])  # reading wrote nothing
            joined = await client.subscribe("feed.kept")  # a subscription keeps its epoch, for a while
            for seq in range(1, 4):
                await client.publish("feed.published", message(seq))
            await client.publish("feed.kept", message(1))
            assert (await client.next_event(10)).epoch is None  # numbered in the epoch the reply gave
            assert joined["offset"] == 0
            count, forever = await keys_without_ttl(redis, "audit:*")
            # per channel published to: its stream, meta hash, applied sequence; per client publish its idempotency key
            assert (count, forever) == (6 + 4, [])
    finally:
        await gateway.broker.close()
        await redis.aclose()
        server.stop()


@pytest.mark.gen_test(timeout=60)
async def test_500_concurrent_history_reads_on_a_healthy_redis_all_succeed():
    server = RedisServer().start()
    broker = RedisBroker(server.url, prefix="busy:")
    retention = Retention(10)
    try:
        pages = await asyncio.gather(*(broker.history(f"feed.r{n}", retention) for n in range(500)),
                                     return_exceptions=True)
        assert [page for page in pages if isinstance(page, BaseException)] == []
        assert {page.position.offset for page in pages} == {0}
        assert len(broker._link.publisher.connection_pool._in_use_connections) == 0  # every connection went back
    finally:
        await broker.close()
        server.stop()
