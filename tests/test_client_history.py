"""The Python client on topics with history: positions, reconnect with ``since``, no offset twice."""

from __future__ import annotations

import asyncio

import pytest

from drizzle_gateway.brokers import MemoryBroker
from drizzle_gateway.client import Client, ConnectionClosed, Position
from drizzle_gateway.history import Position as HistoryPosition
from tests.test_history import clock, gateway, message, publish  # noqa: F401  (fixtures)


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
async def test_the_client_remembers_the_position_of_each_subscription(gateway, connect):  # noqa: F811
    client = await connect()
    reply = await client.subscribe("feed.lobby")
    assert client.position("feed.lobby") == Position(reply["epoch"], 0)
    await publish(gateway, [1, 2])
    events = [await client.next_event(5) for _ in range(2)]
    assert [(e.offset, e.data["seq"]) for e in events] == [(1, 1), (2, 2)]
    assert client.position("feed.lobby") == Position(reply["epoch"], 2)


@pytest.mark.gen_test
async def test_reconnect_recovers_what_was_missed_in_order(gateway, connect):  # noqa: F811
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
async def test_an_offset_is_never_delivered_twice(gateway, connect):  # noqa: F811
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
async def test_reconnect_surfaces_events_lost_beyond_the_history(gateway, connect):  # noqa: F811
    client = await connect()
    await client.subscribe("feed.lobby")
    await drop(client)
    await publish(gateway, range(1, 9))  # history keeps 5: 1-3 are gone
    replies = await client.reconnect()
    assert replies["feed.lobby"]["recovered"] is False and replies["feed.lobby"]["offset"] == 8
    await publish(gateway, [9])
    assert await offsets(client, 1) == [9]


@pytest.mark.gen_test
async def test_a_new_epoch_is_surfaced_and_its_events_delivered(gateway, connect):  # noqa: F811
    client = await connect()
    old = await client.subscribe("feed.lobby")
    await publish(gateway, [1, 2, 3])
    assert await offsets(client, 3) == [1, 2, 3]
    await drop(client)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 5
    while gateway.sessions and loop.time() < deadline:  # the server notices the drop
        await asyncio.sleep(0.01)
    gateway.use_broker(MemoryBroker())  # as a restarted process would: the history is gone
    await publish(gateway, [1])
    replies = await client.reconnect()
    assert replies["feed.lobby"]["recovered"] is False
    assert replies["feed.lobby"]["epoch"] != old["epoch"] and replies["feed.lobby"]["offset"] == 1
    await publish(gateway, [2])
    event = await client.next_event(5)
    assert (event.offset, event.data["seq"]) == (2, 2)  # offset 2 of the new epoch is not a duplicate


@pytest.mark.gen_test
async def test_a_lost_history_is_told_on_the_first_event_of_the_new_epoch(gateway, connect):  # noqa: F811
    client = await connect()
    old = await client.subscribe("feed.lobby")
    await publish(gateway, [1, 2])
    assert await offsets(client, 2) == [1, 2]
    # what a broker whose store lost the channel (Redis restarted empty) hands the fan-out
    gateway.fanout.deliver("feed.lobby", message(3), HistoryPosition("e-new", 1))
    gateway.fanout.deliver("feed.lobby", message(4), HistoryPosition("e-new", 2))
    first, second = await client.next_event(5), await client.next_event(5)
    assert (first.offset, first.epoch, first.data["seq"]) == (1, "e-new", 3)
    assert (second.offset, second.epoch, second.data["seq"]) == (2, None, 4)
    assert old["epoch"] != "e-new" and client.position("feed.lobby") == Position("e-new", 2)
