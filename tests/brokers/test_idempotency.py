"""The keys one process remembers (`SeenKeys`), and the memory broker's publish once per key.

Through a gateway and `TestClient` (the real request and publish paths,
in process): a repeated key is delivered once and answered with the
original's offset; the window's end lets it through again; the table
holds at most its bound, forgetting the least recently published first.
"""

from __future__ import annotations

import pytest

from drizzle_gateway import Gateway, Topic
from drizzle_gateway.brokers import MemoryBroker, Receipt
from drizzle_gateway.brokers.idempotency import SeenKeys
from drizzle_gateway.testing import TestClient
from drizzle_gateway.wire.history import Position
from tests.support.history import FakeClock, message
from tests.support.resources import Message


def test_a_key_is_seen_on_its_channel_for_the_window():
    clock = FakeClock()
    seen = SeenKeys(window=10.0, max_entries=100, clock=clock)
    assert seen.seen("feed.a", "k") is None
    seen.remember("feed.a", "k", Receipt(Position("e", 4)))
    assert seen.seen("feed.a", "k") == Receipt(Position("e", 4), duplicate=True)
    assert seen.seen("feed.b", "k") is None  # another channel: another publish
    clock.now += 9.99
    assert seen.seen("feed.a", "k") is not None
    clock.now += 0.01
    assert seen.seen("feed.a", "k") is None
    assert len(seen) == 0


def test_beyond_its_bound_the_least_recently_published_keys_go_first():
    seen = SeenKeys(window=300.0, max_entries=3, clock=FakeClock())
    for key in "abcd":
        seen.remember("c", key, Receipt())
    assert len(seen) == 3
    assert seen.seen("c", "a") is None
    assert [key for key in "bcd" if seen.seen("c", key)] == ["b", "c", "d"]


def test_expired_keys_are_swept_as_new_ones_come():
    clock = FakeClock()
    seen = SeenKeys(window=1.0, max_entries=1000, clock=clock)
    for n in range(50):
        seen.remember("c", f"k{n}", Receipt())
    clock.now += 2
    seen.remember("c", "fresh", Receipt())
    assert len(seen) == 1


@pytest.mark.parametrize("options", [{"window": 0}, {"window": -1}, {"max_entries": 0}, {"max_entries": True}])
def test_nonsense_settings_are_refused(options):
    with pytest.raises(ValueError):
        SeenKeys(**options)


def keyed_gateway(clock: FakeClock, **broker_options) -> Gateway:
    return Gateway(topics=[Topic("feed.{room}", Message, history=10, client_publish=True),
                           Topic("chat.{room}", Message, client_publish=True)],
                   broker=MemoryBroker(clock=clock, **broker_options))


async def publish(client, topic: str, seq: int, key: str) -> dict:
    return await client.request({"action": "__publish__",
                                 "data": {"topic": topic, "payload": message(seq), "idempotency_key": key}})


async def events(client, count: int) -> list:
    return [(await client.next_event(2)) for _ in range(count)]


@pytest.mark.parametrize("topic", ["feed.a", "chat.a"], ids=["history", "plain"])
@pytest.mark.gen_test
async def test_a_repeated_key_is_delivered_once_and_answered_with_the_originals_offset(topic):
    gateway = keyed_gateway(FakeClock())
    async with TestClient(gateway) as publisher, TestClient(gateway) as reader:
        await reader.subscribe(topic)
        first = await publish(publisher, topic, 1, "k-1")
        repeat = await publish(publisher, topic, 2, "k-1")  # another payload, same key: the same publish
        await publish(publisher, topic, 3, "k-2")
        heard = await events(reader, 2)
    assert [event.data["seq"] for event in heard] == [1, 3]
    assert first["duplicate"] is False and repeat["duplicate"] is True
    if topic == "feed.a":
        assert (first["offset"], repeat["offset"], repeat["epoch"]) == (1, 1, first["epoch"])
        assert [event.offset for event in heard] == [1, 2]
    else:
        assert "offset" not in first and "offset" not in repeat


@pytest.mark.gen_test
async def test_the_key_is_delivered_again_once_its_window_has_passed():
    clock = FakeClock()
    gateway = keyed_gateway(clock, idempotency_window=30.0)
    async with TestClient(gateway) as client:
        await client.subscribe("feed.a")
        assert (await publish(client, "feed.a", 1, "k"))["offset"] == 1
        clock.now += 29.9
        assert (await publish(client, "feed.a", 2, "k"))["duplicate"] is True
        clock.now += 0.1
        again = await publish(client, "feed.a", 3, "k")
        assert (again["duplicate"], again["offset"]) == (False, 2)
        assert [event.data["seq"] for event in await events(client, 2)] == [1, 3]


@pytest.mark.gen_test
async def test_past_the_tables_bound_the_oldest_key_is_forgotten_and_delivered_again():
    gateway = keyed_gateway(FakeClock(), idempotency_keys=3)
    async with TestClient(gateway) as client:
        await client.subscribe("chat.a")
        for seq, key in enumerate("abcd", 1):  # four keys: "a" is pushed out
            assert (await publish(client, "chat.a", seq, key))["duplicate"] is False
        assert len(gateway.broker.seen_keys) == 3
        assert (await publish(client, "chat.a", 5, "d"))["duplicate"] is True
        assert (await publish(client, "chat.a", 6, "a"))["duplicate"] is False
        assert [event.data["seq"] for event in await events(client, 5)] == [1, 2, 3, 4, 6]


@pytest.mark.gen_test
async def test_server_side_publishes_take_a_key_and_say_what_became_of_it():
    gateway = keyed_gateway(FakeClock())
    async with TestClient(gateway) as client:
        await client.subscribe("feed.a")
        receipt = await gateway.publish("feed.{room}", message(1), room="a", idempotency_key="job-7")
        assert receipt.duplicate is False and receipt.position is not None and receipt.position.offset == 1
        assert await gateway.publish("feed.a", message(1), idempotency_key="job-7") == Receipt(receipt.position, True)
        assert await gateway.publish("feed.a", message(2)) == Receipt()  # no key: nothing to say
        assert [event.offset for event in await events(client, 2)] == [1, 2]
