"""`Fanout`: which local subscribers hear a channel, one encode per view, and the order of numbered events.

The broker is the real in-process `MemoryBroker`; the subscribers record
the frames they are handed (a `Session` hands them to its socket). What
clients see over a socket is tested in tests/contract/test_topics.py and
tests/brokers/test_memory.py.
"""

from __future__ import annotations

import asyncio
import json

import pytest

from drizzle_gateway.brokers import MemoryBroker
from drizzle_gateway.runtime.fanout import Congested, Fanout, View
from drizzle_gateway.schema.selection import Selector
from drizzle_gateway.wire.dialect import Dialect
from drizzle_gateway.wire.frame import Frame
from drizzle_gateway.wire.history import Position, Retention
from drizzle_gateway.wire.recovery import Gap
from tests.support.resources import Message

MESSAGE = {"author": {"name": "ada"}, "text": "hi"}
DIALECT = Dialect()


class Recorder:
    """A subscriber that keeps every frame it is handed; ``congested`` makes it hold publishers."""

    def __init__(self, congested: bool = False) -> None:
        self.protocol = DIALECT
        self.frames: list[Frame | str] = []
        self.congested = congested
        self.released_calls = 0

    def send_frame(self, frame: Frame | str) -> bool:
        self.frames.append(frame)
        return self.congested

    async def drained(self) -> None:
        return None

    async def released(self) -> None:
        self.released_calls += 1

    def decoded(self) -> list[dict]:
        return [json.loads(frame.text if isinstance(frame, Frame) else frame) for frame in self.frames]


class LeavingBroker(MemoryBroker):
    """The in-process broker, noting the channels it is told to stop delivering."""

    def __init__(self) -> None:
        super().__init__()
        self.left: list[str] = []

    async def unsubscribe(self, channel: str) -> None:
        self.left.append(channel)
        await super().unsubscribe(channel)


def everything() -> View:
    return View(DIALECT, None)


def text_only() -> View:
    return View(DIALECT, Selector(Message).select(["text"]))


@pytest.mark.gen_test
async def test_one_frame_per_view_shared_by_its_subscribers():
    broker = MemoryBroker()
    fanout = Fanout(broker)
    whole, also_whole, cut = Recorder(), Recorder(), Recorder()
    await fanout.add(whole, "chat.a", everything())
    await fanout.add(also_whole, "chat.a", everything())
    await fanout.add(cut, "chat.a", text_only())
    assert fanout.subscribers("chat.a") == 3 and fanout.subscribers("chat.b") == 0
    await broker.publish("chat.a", MESSAGE)
    assert isinstance(whole.frames[0], Frame) and whole.frames[0] is also_whole.frames[0]  # encoded once for the view
    assert whole.decoded() == [{"topic": "chat.a", "data": MESSAGE}]
    assert cut.decoded() == [{"topic": "chat.a", "data": {"text": "hi"}}]


@pytest.mark.gen_test
async def test_the_broker_stops_listening_after_the_last_subscriber_leaves():
    broker = LeavingBroker()
    fanout = Fanout(broker)
    first, second = Recorder(), Recorder()
    await fanout.add(first, "chat.a", everything())
    await fanout.add(second, "chat.a", text_only())
    fanout.discard(first, "chat.a")
    await broker.publish("chat.a", MESSAGE)
    assert (len(first.frames), len(second.frames)) == (0, 1)
    await fanout.drain()
    assert broker.left == []
    fanout.discard(second, "chat.a")
    await fanout.drain()
    assert fanout.subscribers("chat.a") == 0 and broker.left == ["chat.a"]
    await broker.publish("chat.a", MESSAGE)
    assert len(second.frames) == 1
    assert fanout.deliver("chat.a", MESSAGE) is None  # nobody listens: nothing to wait for


@pytest.mark.gen_test
async def test_keep_only_leaves_the_other_views_of_a_channel():
    fanout = Fanout(MemoryBroker())
    subscriber = Recorder()
    await fanout.add(subscriber, "chat.a", everything())
    narrowed = text_only()
    await fanout.add(subscriber, "chat.a", narrowed)
    fanout.keep_only(subscriber, "chat.a", narrowed)
    fanout.deliver("chat.a", MESSAGE)
    assert subscriber.decoded() == [{"topic": "chat.a", "data": {"text": "hi"}}]


@pytest.mark.gen_test
async def test_congested_subscribers_hold_the_publisher_until_each_releases():
    fanout = Fanout(MemoryBroker())
    free, slow = Recorder(), Recorder(congested=True)
    await fanout.add(free, "chat.a", everything())
    await fanout.add(slow, "chat.a", everything())
    waiting = fanout.deliver("chat.a", MESSAGE)
    assert isinstance(waiting, Congested) and waiting.subscribers == [slow]
    assert slow.released_calls == 0  # nothing runs until it is awaited
    await waiting
    assert (free.released_calls, slow.released_calls) == (0, 1)


@pytest.mark.gen_test
async def test_numbered_events_carry_offsets_the_first_its_epoch_and_duplicates_are_dropped():
    fanout = Fanout(MemoryBroker())
    subscriber = Recorder()
    await fanout.add_logged(subscriber, "feed.a", everything(), Retention(10))
    fanout.deliver("feed.a", MESSAGE, Position("e1", 1))
    fanout.deliver("feed.a", MESSAGE, Position("e1", 1))  # again: dropped
    fanout.deliver("feed.a", MESSAGE, Position("e1", 2))
    assert subscriber.decoded() == [{"topic": "feed.a", "data": MESSAGE, "offset": 1, "epoch": "e1"},
                                    {"topic": "feed.a", "data": MESSAGE, "offset": 2}]


@pytest.mark.gen_test
async def test_skipped_offsets_are_announced_before_the_next_event_and_a_new_epoch_is_named():
    fanout = Fanout(MemoryBroker())
    subscriber = Recorder()
    await fanout.add_logged(subscriber, "feed.a", everything(), Retention(10))
    fanout.deliver("feed.a", MESSAGE, Position("e1", 1))
    fanout.deliver("feed.a", MESSAGE, Position("e1", 4))
    fanout.deliver("feed.a", Gap("e1", 5, 6), Position("e1", 6))  # the broker lost 5 and 6
    fanout.deliver("feed.a", MESSAGE, Position("e2", 1))
    assert subscriber.decoded()[1:] == [
        {"topic": "feed.a", "epoch": "e1", "gap": {"from": 2, "to": 3}},
        {"topic": "feed.a", "data": MESSAGE, "offset": 4},
        {"topic": "feed.a", "epoch": "e1", "gap": {"from": 5, "to": 6}},
        {"topic": "feed.a", "data": MESSAGE, "offset": 1, "epoch": "e2"}]


@pytest.mark.gen_test
async def test_a_subscriber_with_since_is_replayed_what_it_missed_then_joins_live():
    broker = MemoryBroker()
    retention = Retention(10)
    for n in range(3):
        await broker.publish_logged("feed.a", {**MESSAGE, "seq": n}, retention)
    position = await broker.position("feed.a", retention)
    fanout = Fanout(broker)
    subscriber = Recorder()
    joined = await fanout.add_logged(subscriber, "feed.a", everything(), retention, Position(position.epoch, 1))
    assert (joined.position, joined.recovered) == (position, True)
    await broker.publish_logged("feed.a", {**MESSAGE, "seq": 3}, retention)
    assert [(frame["offset"], frame["data"]["seq"]) for frame in subscriber.decoded()] == [(2, 1), (3, 2), (4, 3)]
    stranger = Recorder()
    other = await fanout.add_logged(stranger, "feed.a", everything(), retention, Position("another", 1))
    assert other.recovered is False and stranger.frames == []


@pytest.mark.gen_test
async def test_concurrent_first_subscribers_share_one_broker_subscription():
    broker = MemoryBroker()
    fanout = Fanout(broker)
    subscribers = [Recorder() for _ in range(5)]
    await asyncio.gather(*(fanout.add(subscriber, "chat.a", everything()) for subscriber in subscribers))
    assert fanout.subscribers("chat.a") == 5
    await broker.publish("chat.a", MESSAGE)
    assert [len(subscriber.frames) for subscriber in subscribers] == [1] * 5
