"""Channels with history: offsets, epochs, recovery on subscribe, and ``__history__`` (memory broker)."""

from __future__ import annotations

import asyncio
import itertools
import json

import pytest
from marshmallow import ValidationError

from drizzle_gateway import Gateway, Topic
from drizzle_gateway.brokers import HistoryBroker, MemoryBroker
from drizzle_gateway.brokers.redis import RedisBroker
from drizzle_gateway.runtime.session import Session
from drizzle_gateway.transport.connection import Connection
from drizzle_gateway.wire.dialect import encode
from drizzle_gateway.wire.history import Position
from tests.support.history import TTL, FakeClock, history_gateway, message, publish
from tests.support.polling import wait_until
from tests.support.resources import Message


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def gateway(clock: FakeClock) -> Gateway:
    """Topics with history (5 events, for TTL seconds), one without, and permission variants."""
    return history_gateway(clock)


_ids = itertools.count(1)


class Peer:
    """An in-process connection read frame by frame in arrival order, as `RawSocket` reads a socket."""

    def __init__(self) -> None:
        self.frames: asyncio.Queue[dict] = asyncio.Queue()
        self.session: Session | None = None

    def keep(self, text: str) -> dict:
        frame = json.loads(text)
        self.frames.put_nowait(frame)
        return frame

    async def send(self, frame: dict) -> None:
        assert self.session is not None
        self.session.receive(encode(frame))  # what the socket would hand the session

    async def recv(self) -> dict:
        return await self.frames.get()


@pytest.fixture
def peer(test_client):
    """Open `Peer` connections on the gateway (in process)."""
    async def _open() -> Peer:
        opened = Peer()
        opened.session = (await test_client(loads=opened.keep)).session
        return opened
    return _open


async def ask(sock, action: str, **data) -> dict:
    """Send a built-in request; the events that came before its answer, and the answer."""
    request_id = next(_ids)
    await sock.send({"request_id": request_id, "action": action, "data": data})
    events = []
    while True:
        frame = await asyncio.wait_for(sock.recv(), 5)
        if frame.get("request_id") == request_id:
            return {"events": events, "answer": frame}
        events.append(frame)


async def recv_events(sock, count: int) -> list[dict]:
    return [await asyncio.wait_for(sock.recv(), 5) for _ in range(count)]


async def assert_silent(sock) -> None:
    """Nothing more arrives: a ping is answered before any stray event."""
    got = await ask(sock, "__ping__")
    assert got["events"] == [] and got["answer"]["data"] == "pong"


# -- a topic with history ------------------------------------------------------


def test_history_needs_a_broker_that_keeps_it_and_a_size():
    class NoHistory(MemoryBroker):
        publish_logged = None

    with pytest.raises(ValueError, match="cannot keep"):
        Gateway(topics=[Topic("feed", Message, history=3)], broker=NoHistory())

    class PubSubOnly:  # every method of a `Broker`, none of a `HistoryBroker`
        async def publish(self, channel, data): ...
        async def subscribe(self, channel, listener): ...
        async def unsubscribe(self, channel): ...
        async def close(self): ...

    with pytest.raises(ValueError, match="'feed' has history, which PubSubOnly cannot keep"):
        Gateway(topics=[Topic("feed", Message, history=3)], broker=PubSubOnly())
    Gateway(topics=[Topic("plain", Message)], broker=PubSubOnly())  # no history asked: any broker will do
    assert isinstance(MemoryBroker(), HistoryBroker) and isinstance(RedisBroker(), HistoryBroker)
    assert not isinstance(NoHistory(), HistoryBroker) and not isinstance(PubSubOnly(), HistoryBroker)
    with pytest.raises(ValueError):
        Topic("feed", Message, history=0)
    with pytest.raises(ValueError):
        Topic("feed", Message, history_ttl=3)


# -- in process: what a client sees ------------------------------------------------


@pytest.mark.gen_test
async def test_events_carry_consecutive_offsets_and_the_reply_the_position(gateway, peer):
    first = await peer()
    reply = (await ask(first, "__subscribe__", topic="feed.lobby"))["answer"]["data"]
    assert reply["topic"] == "feed.lobby" and reply["offset"] == 0 and reply["epoch"]
    await publish(gateway, [1, 2, 3])
    events = await recv_events(first, 3)
    assert [(e["topic"], e["offset"], e["data"]["seq"]) for e in events] == [
        ("feed.lobby", 1, 1), ("feed.lobby", 2, 2), ("feed.lobby", 3, 3)]
    second = await peer()
    later = (await ask(second, "__subscribe__", topic="feed.lobby"))["answer"]["data"]
    assert later == {"topic": "feed.lobby", "epoch": reply["epoch"], "offset": 3}
    other_room = (await ask(second, "__subscribe__", topic="feed.kitchen"))["answer"]["data"]
    assert other_room["offset"] == 0  # offsets count per concrete channel


@pytest.mark.gen_test
async def test_topics_without_history_stay_as_they_were(gateway, peer):
    sock = await peer()
    assert (await ask(sock, "__subscribe__", topic="plain"))["answer"]["data"] == {"topic": "plain"}
    await gateway.publish("plain", message(1))
    assert await sock.recv() == {"topic": "plain", "data": message(1)}


@pytest.mark.gen_test
async def test_since_on_a_topic_without_history_answers_not_recovered(gateway, peer):
    sock = await peer()
    got = await ask(sock, "__subscribe__", topic="plain", since={"epoch": "e1", "offset": 3})
    assert got == {"events": [], "answer": {"request_id": got["answer"]["request_id"],
                                            "data": {"topic": "plain", "recovered": False}}}
    await gateway.publish("plain", message(1))  # subscribed and live all the same
    assert await sock.recv() == {"topic": "plain", "data": message(1)}


@pytest.mark.gen_test
async def test_since_replays_the_missed_events_with_fields_then_goes_live(gateway, peer):
    watcher = await peer()
    start = (await ask(watcher, "__subscribe__", topic="feed.lobby"))["answer"]["data"]
    await publish(gateway, [1, 2])
    await recv_events(watcher, 2)
    await publish(gateway, [3, 4, 5])  # missed by the client below, which saw up to 2
    back = await peer()
    got = await ask(back, "__subscribe__", topic="feed.lobby", fields=["seq"],
                    since={"epoch": start["epoch"], "offset": 2})
    assert got["events"] == [{"topic": "feed.lobby", "offset": n, "data": {"seq": n}} for n in (3, 4, 5)]
    assert got["answer"]["data"] == {"topic": "feed.lobby", "epoch": start["epoch"], "offset": 5,
                                     "recovered": True}
    await publish(gateway, [6])
    assert await back.recv() == {"topic": "feed.lobby", "offset": 6, "data": {"seq": 6}}
    await assert_silent(back)


@pytest.mark.gen_test
async def test_recovery_while_publishing_has_no_gap_and_no_duplicate(gateway, peer):
    sock = await peer()
    start = (await ask(sock, "__subscribe__", topic="feed.lobby"))["answer"]["data"]
    await publish(gateway, [1])
    await recv_events(sock, 1)
    back = await peer()

    started = asyncio.Event()

    async def publisher():
        for seq in range(2, 40):
            await publish(gateway, [seq])
            started.set()
            await asyncio.sleep(0.002)

    running = asyncio.ensure_future(publisher())
    await asyncio.wait_for(started.wait(), 5)
    got = await ask(back, "__subscribe__", topic="feed.lobby", since={"epoch": start["epoch"], "offset": 1})
    await running
    assert got["answer"]["data"]["recovered"] is True
    seen = [e["offset"] for e in got["events"]]
    seen += [e["offset"] for e in await recv_events(back, 39 - got["answer"]["data"]["offset"])]
    assert seen[0] == 2 and seen == sorted(set(seen)) and seen[-1] == 39 and len(seen) == 38
    await assert_silent(back)


@pytest.mark.gen_test
async def test_another_epoch_is_not_recovered_and_the_subscription_is_live(gateway, peer):
    await publish(gateway, [1, 2])
    sock = await peer()
    got = await ask(sock, "__subscribe__", topic="feed.lobby", since={"epoch": "gone", "offset": 1})
    assert got["events"] == []
    reply = got["answer"]["data"]
    assert reply["recovered"] is False and reply["offset"] == 2 and reply["epoch"] != "gone"
    await publish(gateway, [3])
    assert (await sock.recv())["offset"] == 3


@pytest.mark.gen_test
async def test_a_gap_older_than_the_history_is_not_recovered(gateway, peer):
    sock = await peer()
    epoch = (await ask(sock, "__subscribe__", topic="feed.lobby"))["answer"]["data"]["epoch"]
    await publish(gateway, range(1, 11))  # history keeps 6-10
    back = await peer()
    got = await ask(back, "__subscribe__", topic="feed.lobby", since={"epoch": epoch, "offset": 4})
    assert got["events"] == [] and got["answer"]["data"]["recovered"] is False
    assert got["answer"]["data"]["offset"] == 10
    kept = await peer()
    got = await ask(kept, "__subscribe__", topic="feed.lobby", since={"epoch": epoch, "offset": 5})
    assert [e["offset"] for e in got["events"]] == [6, 7, 8, 9, 10] and got["answer"]["data"]["recovered"]


@pytest.mark.gen_test
async def test_history_ttl_expires_events(gateway, peer, clock):
    sock = await peer()
    epoch = (await ask(sock, "__subscribe__", topic="feed.lobby"))["answer"]["data"]["epoch"]
    await publish(gateway, [1, 2])
    clock.now += TTL / 2
    await publish(gateway, [3])
    clock.now += TTL / 2  # 1 and 2 are now TTL old: expired
    got = await ask(sock, "__history__", topic="feed.lobby")
    assert [e["offset"] for e in got["answer"]["data"]["events"]] == [3]
    back = await peer()
    lost = await ask(back, "__subscribe__", topic="feed.lobby", since={"epoch": epoch, "offset": 1})
    assert lost["events"] == [] and lost["answer"]["data"]["recovered"] is False
    kept = await ask(back, "__subscribe__", topic="feed.lobby", since={"epoch": epoch, "offset": 2})
    assert [e["offset"] for e in kept["events"]] == [3] and kept["answer"]["data"]["recovered"] is True


@pytest.mark.gen_test
async def test_history_action_with_fields_since_and_limit(gateway, peer):
    await publish(gateway, range(1, 5))
    sock = await peer()
    whole = (await ask(sock, "__history__", topic="feed.lobby"))["answer"]["data"]
    assert [e["offset"] for e in whole["events"]] == [1, 2, 3, 4] and whole["offset"] == 4
    assert whole["events"][0] == {"offset": 1, "data": message(1)} and "recovered" not in whole
    page = (await ask(sock, "__history__", topic="feed.lobby", fields=["text"], limit=2,
                      since={"epoch": whole["epoch"], "offset": 1}))["answer"]["data"]
    assert page["events"] == [{"offset": 2, "data": {"text": "m2"}}, {"offset": 3, "data": {"text": "m3"}}]
    assert page["recovered"] is True
    last = (await ask(sock, "__history__", topic="feed.lobby", limit=1))["answer"]["data"]
    assert [e["offset"] for e in last["events"]] == [4]
    bad_fields = (await ask(sock, "__history__", topic="feed.lobby", fields=["colour"]))["answer"]
    assert bad_fields["code"] == "INVALID_FIELDS"
    no_history = (await ask(sock, "__history__", topic="plain"))["answer"]
    assert no_history["code"] == "INVALID_DATA"
    assert (await ask(sock, "__history__", topic="nowhere"))["answer"]["code"] == "TOPIC_NOT_FOUND"
    assert (await ask(sock, "__history__", topic="feed.lobby", limit=0))["answer"]["code"] == "INVALID_DATA"


@pytest.mark.gen_test
async def test_history_action_has_the_permissions_of_subscribing(gateway, peer):
    await gateway.publish("vault.{room}", message(1), room="open")
    await gateway.publish("vault.{room}", message(2), room="shut")
    await gateway.publish("sealed", message(3))
    sock = await peer()
    opened = (await ask(sock, "__history__", topic="vault.open"))["answer"]
    assert [e["data"]["seq"] for e in opened["data"]["events"]] == [1]
    for channel in ("vault.shut", "sealed"):
        refused = (await ask(sock, "__history__", topic=channel))["answer"]
        assert refused["code"] == "FORBIDDEN" and "data" not in refused
        refused = (await ask(sock, "__subscribe__", topic=channel, since={"epoch": "x", "offset": 0}))["answer"]
        assert refused["code"] == "FORBIDDEN"


@pytest.mark.gen_test
async def test_client_publish_gets_offsets_and_invalid_publish_takes_none(gateway, peer):
    sock = await peer()
    await ask(sock, "__subscribe__", topic="feed.lobby")
    with pytest.raises(ValidationError):
        await gateway.publish("feed.lobby", {"text": "no author"})
    got = await ask(sock, "__publish__", topic="feed.lobby", payload=message(1))
    event = got["events"][0] if got["events"] else await sock.recv()
    assert event["offset"] == 1  # the refused publish used no offset


def test_schema_says_which_topics_keep_history(gateway):
    topics = {topic["name"]: topic for topic in gateway.schema()["topics"]}
    assert topics["feed.{room}"]["history"] == {"size": 5, "ttl": TTL}
    assert topics["sealed"]["history"] == {"size": 5, "ttl": None}
    assert topics["plain"]["history"] is None


# -- what a review found: joins that fail, joins again, channels nobody publishes to -----------------


class SlowPositionBroker(MemoryBroker):
    """A memory broker whose ``position`` takes a round trip, as the Redis broker's does."""

    async def position(self, channel, retention):
        await asyncio.sleep(0.05)
        return await super().position(channel, retention)


@pytest.mark.gen_test
async def test_subscribing_again_with_other_fields_skips_no_event(gateway, peer, clock):
    gateway.use_broker(SlowPositionBroker(clock))
    sock = await peer()
    first = (await ask(sock, "__subscribe__", topic="feed.lobby"))["answer"]["data"]
    await publish(gateway, [1, 2])
    assert [e["offset"] for e in await recv_events(sock, 2)] == [1, 2]

    async def publish_meanwhile() -> None:
        await asyncio.sleep(0.01)  # while the second subscribe is being served
        await publish(gateway, [3, 4, 5])

    meanwhile = asyncio.ensure_future(publish_meanwhile())
    again = await ask(sock, "__subscribe__", topic="feed.lobby", fields=["text"])
    await meanwhile
    await publish(gateway, [6])
    seen = [e["offset"] for e in again["events"]] + [e["offset"] for e in await recv_events(sock, 6 - 2 - len(
        again["events"]))]
    assert seen == [3, 4, 5, 6], seen
    assert again["answer"]["data"]["epoch"] == first["epoch"]


@pytest.mark.gen_test
async def test_reading_channels_nobody_published_to_keeps_nothing(gateway, peer):
    sock = await peer()
    epochs = set()
    for n in range(50):
        reply = (await ask(sock, "__history__", topic=f"feed.r{n}"))["answer"]["data"]
        assert reply["events"] == [] and reply["offset"] == 0
        epochs.add(reply["epoch"])
    assert gateway.broker._rings == {}  # a client cannot grow the broker by naming channels
    await publish(gateway, [1], room="r7")
    assert (await ask(sock, "__history__", topic="feed.r7"))["answer"]["data"]["epoch"] in epochs  # one epoch


# -- what the memory broker keeps: a bounded number of channels and bytes -------------------------------


def bounded(gateway: Gateway, clock: FakeClock, channels: int, size: int | None = None) -> Gateway:
    """``gateway`` on a memory broker keeping the history of ``channels`` channels and ``size`` bytes."""
    gateway.use_broker(MemoryBroker(clock=clock, history_channels=channels, history_bytes=size))
    return gateway


@pytest.mark.gen_test
async def test_the_memory_broker_keeps_at_most_its_channels_and_bytes(gateway, clock):
    by_count = bounded(gateway, clock, channels=100)
    event_bytes = len(encode(message(0)))
    by_size = bounded(Gateway(topics=[Topic("feed.{room}", Message, history=5)]), clock, 1000, 50 * event_bytes)
    for room in range(1000):
        for gateway in (by_count, by_size):
            await publish(gateway, [room % 10], room=f"r{room}")
            await publish(gateway, [room % 10], room=f"r{room}")
        assert by_count.broker.history_weight == (min(room + 1, 100), 2 * event_bytes * min(room + 1, 100))
        assert by_size.broker.history_weight == (min(room + 1, 25), 2 * event_bytes * min(room + 1, 25))
    assert list(by_count.broker._rings) == [f"feed.r{room}" for room in range(900, 1000)]  # the latest published
    with pytest.raises(ValueError, match="history_channels must be a positive integer"):
        MemoryBroker(history_channels=0)


@pytest.mark.gen_test
async def test_one_channel_heavier_than_the_bytes_bound_loses_its_oldest_events(gateway, clock):
    event_bytes = len(encode(message(0)))
    bounded(gateway, clock, channels=10, size=3 * event_bytes)
    await publish(gateway, range(1, 6))
    assert gateway.broker.history_weight == (1, 3 * event_bytes)
    page = await gateway.history("feed.lobby", Position(gateway.broker._epoch, 1))
    assert ([e.offset for e in page.events], page.complete) == ([3, 4, 5], False)


@pytest.mark.gen_test
async def test_a_forgotten_channel_comes_back_in_a_new_epoch_and_is_not_recovered(gateway, clock, peer):
    bounded(gateway, clock, channels=100)
    listener = await peer()
    old = (await ask(listener, "__subscribe__", topic="feed.r0"))["answer"]["data"]
    await publish(gateway, [1], room="r0")
    assert (await listener.recv())["offset"] == 1
    for room in range(1, 1000):  # r0 is forgotten
        await publish(gateway, [room], room=f"r{room}")
    assert "feed.r0" not in gateway.broker._rings
    client = await peer()
    gone = await ask(client, "__subscribe__", topic="feed.r0", since={"epoch": old["epoch"], "offset": 1})
    assert gone["events"] == [] and gone["answer"]["data"]["recovered"] is False
    await publish(gateway, [2], room="r0")
    again = await listener.recv()  # the live subscriber is told: the history was lost
    assert (again["offset"], again["epoch"] != old["epoch"]) == (1, True)
    back = await ask(await peer(), "__subscribe__", topic="feed.r0", since={"epoch": old["epoch"], "offset": 1})
    assert back["events"] == [] and back["answer"]["data"]["recovered"] is False


@pytest.mark.gen_test
async def test_a_ring_idle_past_its_ttl_is_dropped(gateway, clock):
    bounded(gateway, clock, channels=100)
    await publish(gateway, [1, 2], room="quiet")
    epoch = (await gateway.history("feed.quiet", None)).position.epoch
    clock.now += TTL / 2
    await publish(gateway, [1], room="busy")
    clock.now += TTL / 2  # quiet's events are TTL old
    await publish(gateway, [2], room="busy")
    assert list(gateway.broker._rings) == ["feed.busy"]
    assert gateway.broker.history_weight == (1, 2 * len(encode(message(1))))
    page = await gateway.history("feed.quiet", Position(epoch, 2))
    assert (page.position.offset, page.complete) == (0, False)  # never a silent skip back to offset 1


# -- over a real socket: a peer that stops reading mid-replay ------------------------------------------


@pytest.mark.gen_test
async def test_a_connection_closed_mid_replay_is_let_go(gateway, raw, monkeypatch):
    sock = await raw()
    first = (await ask(sock, "__subscribe__", topic="feed.lobby"))["answer"]["data"]
    await publish(gateway, range(1, 5))
    await recv_events(sock, 4)
    reading = next(iter(gateway.hub.sessions)).peer
    never = asyncio.get_running_loop().create_future()
    send = Connection.send_frame

    def congested(self, frame):  # the newcomer never drains during its replay (its network dropped)
        send(self, frame)
        return self is not reading

    async def stuck(self):
        await never

    monkeypatch.setattr(Connection, "send_frame", congested)
    monkeypatch.setattr(Connection, "drained", stuck)
    back = await raw()
    await back.send({"request_id": 1, "action": "__subscribe__",
                     "data": {"topic": "feed.lobby", "since": {"epoch": first["epoch"], "offset": 0}}})
    await wait_until(lambda: gateway.hub.fanout.subscribers("feed.lobby") >= 2, 5)  # joined, replay under way
    back.ws.close()
    await wait_until(lambda: len(gateway.hub.sessions) <= 1 and gateway.hub.fanout.subscribers("feed.lobby") <= 1, 5)
    assert gateway.hub.fanout.subscribers("feed.lobby") == 1
