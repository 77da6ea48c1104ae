"""The Python client on topics with history: positions, reconnect with ``since``, no offset twice."""

from __future__ import annotations

import asyncio

import pytest

from drizzle_gateway import Gateway
from drizzle_gateway.brokers import MemoryBroker
from drizzle_gateway.client import Client, ConnectionClosed, Gap, Position, RemoteError
from drizzle_gateway.wire.history import Position as HistoryPosition
from tests.support.history import FakeClock, history_gateway, message, publish
from tests.support.polling import wait_until


@pytest.fixture
def gateway() -> Gateway:
    """The history topics of tests/support/history.py, on a clock that stays still."""
    return history_gateway(FakeClock())


async def drop(client: Client) -> None:
    """Cut the client's TCP connection without a close handshake, as a network change would."""
    client._ws.protocol.stream.close()
    with pytest.raises(ConnectionClosed):
        while True:
            await client.next_event(5)


async def offsets(client: Client, count: int) -> list[int]:
    return [(await client.next_event(5)).offset for _ in range(count)]


async def assert_no_event(client: Client) -> None:
    with pytest.raises(asyncio.TimeoutError):
        await client.next_event(0.2)


@pytest.mark.gen_test
async def test_the_client_remembers_the_position_of_each_subscription(gateway, connect):
    client = await connect()
    reply = await client.subscribe("feed.lobby")
    assert client.position("feed.lobby") == Position(reply["epoch"], 0)
    await publish(gateway, [1, 2])
    events = [await client.next_event(5) for _ in range(2)]
    assert [(e.offset, e.data["seq"]) for e in events] == [(1, 1), (2, 2)]
    assert client.position("feed.lobby") == Position(reply["epoch"], 2)


@pytest.mark.gen_test
async def test_reconnect_recovers_what_was_missed_in_order(gateway, connect):
    client = await connect()
    await client.subscribe("feed.lobby", ["seq"])
    await publish(gateway, [1, 2])
    assert await offsets(client, 2) == [1, 2]
    await drop(client)
    await publish(gateway, [3, 4, 5])
    replies = await client.reconnect()
    assert replies["feed.lobby"]["recovered"] is True
    await publish(gateway, [6])
    events = [await client.next_event(5) for _ in range(4)]
    assert [(e.offset, e.data) for e in events] == [(n, {"seq": n}) for n in (3, 4, 5, 6)]
    await assert_no_event(client)


@pytest.mark.gen_test
async def test_an_offset_is_never_delivered_twice(gateway, connect):
    client = await connect()
    first = await client.subscribe("feed.lobby")
    await publish(gateway, [1, 2, 3])
    assert await offsets(client, 3) == [1, 2, 3]
    # asking again from offset 1 makes the server replay 2 and 3, which this client delivered already
    again = await client.subscribe("feed.lobby", since=Position(first["epoch"], 1))
    assert again["recovered"] is True
    await publish(gateway, [4])
    assert await offsets(client, 1) == [4]
    await assert_no_event(client)


@pytest.mark.gen_test
async def test_reconnect_surfaces_events_lost_beyond_the_history(gateway, connect):
    client = await connect()
    await client.subscribe("feed.lobby")
    await drop(client)
    await publish(gateway, range(1, 9))  # history keeps 5: 1-3 are gone
    replies = await client.reconnect()
    assert replies["feed.lobby"]["recovered"] is False and replies["feed.lobby"]["offset"] == 8
    await publish(gateway, [9])
    assert await offsets(client, 1) == [9]


@pytest.mark.gen_test
async def test_a_new_epoch_is_surfaced_and_its_events_delivered(gateway, connect):
    client = await connect()
    old = await client.subscribe("feed.lobby")
    await publish(gateway, [1, 2, 3])
    assert await offsets(client, 3) == [1, 2, 3]
    await drop(client)
    await wait_until(lambda: not gateway.hub.sessions, 5)  # the server notices the drop
    gateway.use_broker(MemoryBroker())  # as a restarted process would: the history is gone
    await publish(gateway, [1])
    replies = await client.reconnect()
    assert replies["feed.lobby"]["recovered"] is False
    assert replies["feed.lobby"]["epoch"] != old["epoch"] and replies["feed.lobby"]["offset"] == 1
    await publish(gateway, [2])
    event = await client.next_event(5)
    assert (event.offset, event.data["seq"]) == (2, 2)  # offset 2 of the new epoch is not a duplicate


@pytest.mark.gen_test
async def test_a_lost_history_is_told_on_the_first_event_of_the_new_epoch(gateway, connect):
    client = await connect()
    old = await client.subscribe("feed.lobby")
    await publish(gateway, [1, 2])
    assert await offsets(client, 2) == [1, 2]
    # what a broker whose store lost the channel (Redis restarted empty) hands the fan-out
    gateway.hub.fanout.deliver("feed.lobby", message(3), HistoryPosition("e-new", 1))
    gateway.hub.fanout.deliver("feed.lobby", message(4), HistoryPosition("e-new", 2))
    first, second = await client.next_event(5), await client.next_event(5)
    assert (first.offset, first.epoch, first.data["seq"]) == (1, "e-new", 3)
    assert (second.offset, second.epoch, second.data["seq"]) == (2, None, 4)
    assert old["epoch"] != "e-new" and client.position("feed.lobby") == Position("e-new", 2)


@pytest.mark.gen_test
async def test_a_gap_notice_is_surfaced_in_place_and_delivery_goes_on_after_it(gateway, connect):
    client = await connect()
    reply = await client.subscribe("feed.lobby", ["seq"])
    epoch = reply["epoch"]
    await publish(gateway, [1, 2])
    assert await offsets(client, 2) == [1, 2]
    # what a broker whose store lost offsets 3-5 before this process read them (trimmed) hands the fan-out
    gateway.hub.fanout.deliver("feed.lobby", Gap(epoch, 3, 5), HistoryPosition(epoch, 5))
    gateway.hub.fanout.deliver("feed.lobby", message(6), HistoryPosition(epoch, 6))
    lost, after = await client.next_event(5), await client.next_event(5)
    assert (lost.topic, lost.data, lost.offset, lost.gap) == ("feed.lobby", None, None, Gap(epoch, 3, 5))
    assert (after.offset, after.data, after.gap) == (6, {"seq": 6}, None)
    assert client.position("feed.lobby") == Position(epoch, 6)
    await assert_no_event(client)


def skip_live(gateway, through: int) -> None:
    """Make the fan-out withhold the live events up to offset ``through`` from the only session (a silent jump)."""
    session = next(iter(gateway.hub.sessions))
    gateway.hub.fanout._log.hold("feed.lobby", session, through)


@pytest.mark.gen_test
async def test_an_offset_jump_without_a_notice_is_filled_from_history(gateway, connect):
    client = await connect()
    await client.subscribe("feed.lobby", ["seq"])
    await publish(gateway, [1, 2])
    assert await offsets(client, 2) == [1, 2]
    skip_live(gateway, 4)
    await publish(gateway, [3, 4, 5, 6])  # the client hears 5 right after 2
    events = [await client.next_event(5) for _ in range(4)]
    assert [(e.offset, e.data, e.gap) for e in events] == [(n, {"seq": n}, None) for n in (3, 4, 5, 6)]
    await assert_no_event(client)


@pytest.mark.gen_test
async def test_an_offset_jump_past_the_history_is_surfaced_as_a_gap(gateway, connect):
    client = await connect()
    epoch = (await client.subscribe("feed.lobby", ["seq"]))["epoch"]
    await publish(gateway, [1, 2])
    assert await offsets(client, 2) == [1, 2]
    skip_live(gateway, 8)
    await publish(gateway, range(3, 10))  # the client hears 9 right after 2; history keeps 5-9
    events = [await client.next_event(5) for _ in range(6)]
    assert events[0].gap == Gap(epoch, 3, 4) and events[0].data is None
    assert [(e.offset, e.data) for e in events[1:]] == [(n, {"seq": n}) for n in (5, 6, 7, 8, 9)]
    await assert_no_event(client)


# -- reading the history: Client.history -------------------------------------------------------


@pytest.mark.gen_test
async def test_history_returns_events_with_their_offset_and_epoch(gateway, connect):
    await publish(gateway, [1, 2, 3])
    client = await connect()
    page = await client.history("feed.{room}", room="lobby", fields=["seq"])
    assert [(event.topic, event.offset, event.data) for event in page] == [
        ("feed.lobby", 1, {"seq": 1}), ("feed.lobby", 2, {"seq": 2}), ("feed.lobby", 3, {"seq": 3})]
    assert {event.epoch for event in page} == {page.epoch} and len(page.epoch) > 0
    assert (page.offset, page.recovered) == (3, None)
    assert [event.offset for event in await client.history("feed.lobby", limit=2)] == [2, 3]


@pytest.mark.gen_test
async def test_history_since_a_position_says_whether_nothing_after_it_is_missing(gateway, connect):
    await publish(gateway, range(1, 9))  # 5 kept: offsets 4..8
    client = await connect()
    latest = await client.history("feed.lobby", limit=1)
    after = await client.history("feed.lobby", since=Position(latest.epoch, 6), limit=1)
    assert ([event.offset for event in after], after.recovered) == ([7], True)
    lost = await client.history("feed.lobby", since=Position(latest.epoch, 1))
    assert ([event.offset for event in lost], lost.recovered) == ([4, 5, 6, 7, 8], False)


@pytest.mark.gen_test
async def test_history_refusals_are_the_gateways_and_a_pattern_needs_its_params(connect):
    client = await connect()
    with pytest.raises(RemoteError) as plain:
        await client.history("plain")
    assert str(plain.value) == "INVALID_DATA: topic 'plain' keeps no history"
    with pytest.raises(RemoteError) as forbidden:
        await client.history("vault.{room}", room="shut")
    assert forbidden.value.code == "FORBIDDEN"
    with pytest.raises(ValueError) as unfilled:
        await client.history("feed.{room}", house="x")
    assert str(unfilled.value) == "cannot fill 'feed.{room}' from ['house']: 'room'"


@pytest.mark.gen_test
async def test_reconnect_to_another_url_recovers_since_the_position(gateway, connect, ws_url):
    client = await connect()
    client.url = ws_url.replace("127.0.0.1", "localhost")  # the same server under another name
    await client.subscribe("feed.lobby", ["seq"])
    await publish(gateway, [1])
    assert await offsets(client, 1) == [1]
    await drop(client)
    await publish(gateway, [2, 3])
    replies = await client.reconnect(url=ws_url)
    assert client.url == ws_url
    assert replies["feed.lobby"]["recovered"] is True
    assert await offsets(client, 2) == [2, 3]
