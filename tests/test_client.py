"""drizzle_gateway.client: the asyncio client users test their gateways with."""

from __future__ import annotations

import asyncio

import pytest

from drizzle_gateway.client import Client, ConnectionClosed, RemoteError


@pytest.mark.gen_test
async def test_context_manager_call_and_remote_error(ws_url):
    async with Client(ws_url) as client:
        assert await client.ping() == "pong"
        with pytest.raises(RemoteError) as caught:
            await client.call("todos", "create", {})
        assert caught.value.code == "INVALID_DATA"
        assert caught.value.details == {"title": ["Missing data for required field."]}
        assert "INVALID_DATA" in str(caught.value)


@pytest.mark.gen_test
async def test_events_iterate_until_the_connection_closes(gateway, ws_url):
    client = await Client(ws_url).connect()
    await client.subscribe("todos")
    await client.call("todos", "create", {"title": "a"})
    await client.call("todos", "create", {"title": "b"})
    titles = []
    async for event in client.events():
        titles.append(event.data["title"])
        if len(titles) == 2:
            break
    assert titles == ["a", "b"]
    await gateway.close()
    with pytest.raises(ConnectionClosed):
        await client.next_event(2)
    assert client.close_code == 1001
    with pytest.raises(ConnectionClosed):
        await client.ping()


@pytest.mark.gen_test
async def test_request_times_out_without_reply(ws_url):
    async with Client(ws_url, timeout=0.2) as client:
        with pytest.raises(asyncio.TimeoutError):
            await client.call("lab", "sleep", {"seconds": 1, "tag": "x"})
