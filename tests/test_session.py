"""`drizzle_gateway.session.Session`: what one connection holds (subscriptions) and lets go, in process and on close."""

from __future__ import annotations

import asyncio

import pytest

from drizzle_gateway.client import RemoteError
from drizzle_gateway.limits import Limits

MESSAGE = {"author": {"name": "ada"}, "text": "hello"}


@pytest.mark.gen_test
async def test_subscriptions_per_connection_are_capped(gateway, test_client):
    gateway.limits = Limits(max_subscriptions=2)
    client = await test_client()
    await client.subscribe("chat.a")
    await client.subscribe("chat.b")
    await client.subscribe("chat.a")  # again: still two
    with pytest.raises(RemoteError) as refused:
        await client.subscribe("chat.c")
    assert refused.value.code == "LIMIT_EXCEEDED"
    assert refused.value.details == {"limit": "max_subscriptions", "max": 2}
    await client.unsubscribe("chat.a")
    assert await client.subscribe("chat.c") == {"topic": "chat.c"}


async def assert_closing_drops_subscriptions(gateway, open_client) -> None:
    """A client that closes leaves its channels; the others still hear them."""
    client, other = await open_client(), await open_client()
    await client.subscribe("alerts")
    await client.subscribe("chat.a")
    await other.subscribe("alerts")
    assert gateway.fanout.subscribers("alerts") == 2
    await client.close()
    async with asyncio.timeout(2):  # a socket's close reaches the server a little later
        while gateway.fanout.subscribers("alerts") != 1:
            await asyncio.sleep(0.01)
    assert gateway.fanout.subscribers("chat.a") == 0
    await gateway.publish("alerts", MESSAGE)
    assert (await other.next_event(2)).data == MESSAGE


@pytest.mark.gen_test
async def test_closing_a_connection_removes_its_subscriptions(gateway, test_client):
    await assert_closing_drops_subscriptions(gateway, test_client)


# -- over a real socket: the websocket's close ends the session ------------------------------------


@pytest.mark.gen_test
async def test_a_closed_socket_leaves_its_channels(gateway, connect):
    await assert_closing_drops_subscriptions(gateway, connect)
