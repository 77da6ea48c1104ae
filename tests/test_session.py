"""`drizzle_gateway.session.Session`, in process: what one connection holds (subscriptions) and lets go."""

from __future__ import annotations

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


@pytest.mark.gen_test
async def test_closing_a_connection_removes_its_subscriptions(gateway, test_client):
    client, other = await test_client(), await test_client()
    await client.subscribe("alerts")
    await client.subscribe("chat.a")
    await other.subscribe("alerts")
    assert gateway.fanout.subscribers("alerts") == 2
    await client.close()
    assert gateway.fanout.subscribers("alerts") == 1
    assert gateway.fanout.subscribers("chat.a") == 0
    await gateway.publish("alerts", MESSAGE)
    assert (await other.next_event(2)).data == MESSAGE
