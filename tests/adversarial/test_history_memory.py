"""Memory per channel: a client publishing to far more rooms with history than the memory broker keeps.

The broker's bounds are small here (`CHANNELS` channels, `EVENTS_KEPT`
events' worth of bytes), so the attack goes well past both within the
default rate limit; after every publish the broker's own count of channels
and bytes is read and must be within its bounds, exactly as docs/security.md
("History kept in memory is bounded") says.
"""

from __future__ import annotations

import pytest

from drizzle_gateway import Gateway, Topic
from drizzle_gateway.brokers import MemoryBroker
from drizzle_gateway.wire.dialect import encode
from tests.support.bystander import Bystander
from tests.support.resources import Message

pytestmark = pytest.mark.adversarial

CHANNELS = 20
"""The broker's ``history_channels`` in this test."""
EVENTS_KEPT = 30
"""The broker's ``history_bytes``, in events of `PAYLOAD`'s size."""
PAYLOAD = {"author": {"name": "mallory"}, "text": "x" * 80}
"""Every event the attacker publishes: the same size, so the bytes kept are an exact multiple of one."""
EVENT_BYTES = len(encode(PAYLOAD))


@pytest.fixture
def gateway() -> Gateway:
    """Rooms with a history of 1,000 events that clients may publish to, on a broker with small bounds."""
    return Gateway(topics=[Topic("feed.{room}", Message, history=1000, client_publish=True)],
                   broker=MemoryBroker(history_channels=CHANNELS, history_bytes=EVENTS_KEPT * EVENT_BYTES))


@pytest.mark.gen_test(timeout=30)
async def test_publishing_to_many_rooms_and_one_heavy_room_keeps_the_broker_within_its_bounds(gateway, connect):
    broker = gateway.broker
    bystander, attacker = await connect(), await connect()
    await bystander.subscribe("feed.watched")
    async with Bystander(bystander, "history: 100 rooms, then 100 events in one") as watch:
        for room in range(100):  # five times the channels kept
            await attacker.publish(f"feed.r{room}", PAYLOAD)
            kept = min(room + 1, CHANNELS)
            assert broker.history_weight == (kept, kept * EVENT_BYTES)
        assert sorted(broker._rings) == sorted(f"feed.r{room}" for room in range(100 - CHANNELS, 100))
        for count in range(1, 101):  # one room heavier than all the bytes kept: it loses its oldest events
            await attacker.publish("feed.heavy", PAYLOAD)
            others = max(0, min(CHANNELS - 1, EVENTS_KEPT - count))  # the rooms left, least recent first
            heavy = min(count, EVENTS_KEPT)
            assert broker.history_weight == (1 + others, (others + heavy) * EVENT_BYTES)
        assert broker.history_weight == (1, EVENTS_KEPT * EVENT_BYTES)
        assert list(broker._rings) == ["feed.heavy"]
        page = await attacker.request({"action": "__history__", "data": {"topic": "feed.heavy"}})
        assert [event["offset"] for event in page["events"]] == list(range(100 - EVENTS_KEPT + 1, 101))
        await gateway.publish("feed.watched", {"author": {"name": "ada"}, "text": "still here"})
    await watch.check()
    event = await bystander.next_event(5)
    assert (event.topic, event.data["text"]) == ("feed.watched", "still here")
