"""drizzle_gateway.client: the asyncio client users test their gateways with."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time

import pytest

from drizzle_gateway import Limits
from drizzle_gateway.client import Client, ConnectionClosed, RemoteError, backoff_delay, retry_delay
from tests.support.gateways import listening
from tests.support.polling import wait_until
from tests.support.streaming import make_stream_gateway


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


# -- retries after RATE_LIMITED ----------------------------------------------------

RETRY_LOG = "drizzle_gateway.client"


def retries_logged(caplog) -> list[str]:
    """The client's notes of requests it sends again after a refusal."""
    return [r.getMessage() for r in caplog.records if r.name == RETRY_LOG and "refused with" in r.getMessage()]


@pytest.mark.gen_test(timeout=30)
@pytest.mark.gateway_options(limits=Limits(rate=10, burst=2))
async def test_subscribes_beyond_the_rate_limit_are_retried_and_all_deliver(gateway, connect, caplog):
    caplog.set_level(logging.DEBUG, logger=RETRY_LOG)
    client = await connect()
    rooms = [f"r{i}" for i in range(8)]
    replies = await asyncio.gather(*(client.subscribe(f"chat.{room}") for room in rooms))
    assert replies == [{"topic": f"chat.{room}"} for room in rooms]
    assert any("__subscribe__ refused with RATE_LIMITED" in note for note in retries_logged(caplog))
    for room in rooms:
        await gateway.publish(f"chat.{room}", {"author": {"name": "ada"}, "text": room})
    events = [await client.next_event(5) for _ in rooms]
    assert sorted((event.topic, event.data["text"]) for event in events) == [(f"chat.{room}", room) for room in rooms]


@pytest.mark.gen_test(timeout=30)
@pytest.mark.gateway_options(limits=Limits(rate=4, burst=1))  # one token, back 0.25 s after it is spent
async def test_ping_schema_and_unsubscribe_are_retried_publish_and_calls_are_not(connect, caplog):
    caplog.set_level(logging.DEBUG, logger=RETRY_LOG)
    client = await connect()
    rooms = ["chat.lobby", "chat.hall"]
    assert await asyncio.gather(*(client.subscribe(room) for room in rooms)) == [{"topic": room} for room in rooms]
    # Two requests sent together: whatever the bucket holds, the second finds it empty.
    for refused in (client.publish("chat.lobby", {"author": {"name": "ada"}, "text": "hi"}),
                    client.call("lab", "plain", {"x": 1})):
        pong, outcome = await asyncio.gather(client.ping(), refused, return_exceptions=True)
        assert pong == "pong"
        assert isinstance(outcome, RemoteError) and outcome.code == "RATE_LIMITED", outcome
        assert outcome.details["retry_after"] > 0
    assert await asyncio.gather(client.ping(), client.ping()) == ["pong", "pong"]
    schemas = await asyncio.gather(client.schema(), client.schema())
    assert all("todos" in json.dumps(schema) for schema in schemas)
    assert await asyncio.gather(*(client.unsubscribe(room) for room in rooms)) == [{"topic": room} for room in rooms]
    retried = {note.split()[0] for note in retries_logged(caplog)}
    assert retried == {"__subscribe__", "__ping__", "__schema__", "__unsubscribe__"}  # not the publish, nor the call


@pytest.mark.gen_test(timeout=30)
@pytest.mark.gateway_options(limits=Limits(rate=1, burst=1))
async def test_retries_are_bounded(connect):
    impatient = await connect(max_retry_delay=0.05)
    assert await impatient.ping() == "pong"
    started = time.monotonic()
    with pytest.raises(RemoteError) as caught:
        await impatient.ping()  # the server asks for about 1 s: more than max_retry_delay
    assert caught.value.code == "RATE_LIMITED"
    assert time.monotonic() - started < 0.5
    no_retries = await connect(retries=0)
    assert await no_retries.ping() == "pong"
    with pytest.raises(RemoteError) as caught:
        await no_retries.ping()
    assert caught.value.code == "RATE_LIMITED"


@pytest.mark.gen_test(timeout=30)
@pytest.mark.gateway_options(limits=Limits(rate=0.5, burst=1))
async def test_a_retry_waiting_for_its_turn_ends_as_soon_as_the_connection_closes(connect, caplog):
    caplog.set_level(logging.DEBUG, logger=RETRY_LOG)
    client = await connect()
    assert await client.ping() == "pong"
    waiting = asyncio.ensure_future(client.ping())  # refused; the server asks for about 2 s
    await wait_until(lambda: retries_logged(caplog), 5)
    assert not waiting.done()
    started = time.monotonic()
    await client.close()
    with pytest.raises(ConnectionClosed):
        await asyncio.wait_for(waiting, 5)
    assert time.monotonic() - started < 1.0


def test_retry_delay_retries_only_transient_refusals():
    assert retry_delay(RemoteError("RATE_LIMITED", "slow down", {"retry_after": 0.25})) == 0.25
    final = [
        RemoteError("LIMIT_EXCEEDED", "full", {"limit": "max_subscriptions", "max": 100}),
        RemoteError("FORBIDDEN", "no"),
        RemoteError("RATE_LIMITED", "no hint"),
        RemoteError("RATE_LIMITED", "bad hint", {"retry_after": "soon"}),
        RemoteError("RATE_LIMITED", "bad hint", {"retry_after": -1}),
        RemoteError("RATE_LIMITED", "bad hint", {"retry_after": True}),
        ConnectionClosed(1001, "going away"),
        TimeoutError(),
    ]
    for error in final:
        assert retry_delay(error) is None, error


def test_close_codes_of_a_drain_or_restart_say_reconnect():
    assert ConnectionClosed(1012, "server restarting").should_reconnect
    assert ConnectionClosed(1001, "server shutting down").should_reconnect
    assert not ConnectionClosed(1000, None).should_reconnect
    assert not ConnectionClosed(4001, "not authenticated in time").should_reconnect


def test_backoff_delay_grows_to_its_maximum_and_spreads_clients_out():
    fixed = [backoff_delay(n, initial=0.1, maximum=1.0, jitter=0) for n in range(6)]
    assert fixed == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.0, 1.0])
    assert backoff_delay(3, initial=1.0, uniform=lambda: 0.0) == 4.0
    assert backoff_delay(3, initial=1.0, uniform=lambda: 0.5) == 6.0
    delays = [backoff_delay(0) for _ in range(200)]
    assert all(0.25 <= delay <= 0.5 for delay in delays)
    assert len(set(delays)) > 100  # clients closed at once do not all come back at once


@pytest.mark.gen_test(timeout=30)
async def test_a_publish_cut_off_before_its_reply_is_sent_again_after_reconnect_and_delivered_once(
        http_server, http_port, connect):
    """The connection drops between the server's publish and its reply; after `reconnect` the client sends
    it again with the same key, and the subscriber still gets it once."""
    from tests.support.reply_holder import ReplyHolder

    proxy = await ReplyHolder(http_port).start()
    reader = await connect()
    await reader.subscribe("chat.retry")
    client = await Client(f"ws://127.0.0.1:{proxy.port}/ws", timeout=5).connect()
    try:
        proxy.hold()
        publishing = asyncio.ensure_future(client.publish("chat.retry", {"author": {"name": "a"}, "text": "once"}))
        assert (await reader.next_event(5)).data["text"] == "once"  # the server published it
        assert not publishing.done()  # its reply is held back
        proxy.cut()
        await wait_until(lambda: client.close_code is not None or client._gone.done(), 5)
        assert not publishing.done()  # waiting for the next connection, not failed
        await client.reconnect()
        reply = await asyncio.wait_for(publishing, 5)
        assert reply == {"topic": "chat.retry", "duplicate": True}  # the second attempt found the first
        await client.publish("chat.retry", {"author": {"name": "a"}, "text": "next"})
        assert (await reader.next_event(5)).data["text"] == "next"  # nothing came in between
    finally:
        await client.close()
        await proxy.close()


@pytest.mark.gen_test(timeout=30)
async def test_a_publish_waiting_for_a_connection_fails_when_none_comes_or_the_client_is_closed(ws_url):
    client = await Client(ws_url, timeout=0.5).connect()
    client._ws.close()  # the link drops; nobody reconnects
    started = time.monotonic()
    with pytest.raises(ConnectionClosed):
        await client.publish("chat.gone", {"author": {"name": "a"}, "text": "x"})
    assert 0.4 < time.monotonic() - started < 3
    await client.connect()
    waiting = asyncio.ensure_future(client.publish("chat.gone", {"author": {"name": "a"}, "text": "y"}))
    await client.close()
    with pytest.raises(ConnectionClosed):
        await asyncio.wait_for(waiting, 0.3)  # at once: closed for good, not waiting for a reconnect

# -- streaming replies -------------------------------------------------------------


@pytest.mark.gen_test(timeout=30)
async def test_stream_yields_every_item_in_order_with_the_fields_selected():
    gateway = make_stream_gateway()
    async with listening(gateway) as url, Client(url) as client:
        items = [item async for item in client.stream("feed", "count", {"upto": 5}, fields=["n", "tag.name"])]
        assert items == [{"n": n, "tag": {"name": f"t{n % 3}"}} for n in range(5)]
        assert [item async for item in client.stream("feed", "one", {"upto": 3}, fields=["n"])] == [{"n": 3}]
    assert gateway.state["probe"].closed == 1


@pytest.mark.gen_test(timeout=30)
async def test_leaving_a_stream_early_cancels_it_on_the_server():
    gateway = make_stream_gateway()
    probe = gateway.state["probe"]
    async with listening(gateway) as url, Client(url) as client:
        async with contextlib.aclosing(client.stream("feed", "count", {"upto": 1_000_000, "gap": 0.001})) as items:
            async for item in items:
                if item["n"] == 2:
                    break
        assert probe.closed == 1  # aclose waited for the __cancel__ reply, which follows the generator's close
        async for item in client.stream("feed", "count", {"upto": 1_000_000, "gap": 0.001}):
            if item["n"] == 2:
                break  # no aclosing: the dropped generator is closed, which cancels the stream
        await wait_until(lambda: probe.closed == 2, 5)
        assert all(len(session.streams) == 0 for session in gateway.hub.sessions)
        assert await client.ping() == "pong"


@pytest.mark.gen_test(timeout=30)
async def test_an_error_frame_raises_after_the_items_before_it():
    async with listening(make_stream_gateway()) as url, Client(url) as client:
        got = []
        with pytest.raises(RemoteError) as failed:
            async for item in client.stream("feed", "count", {"upto": 5, "fail_at": 2}, fields=["n"]):
                got.append(item["n"])
        assert (got, failed.value.code, failed.value.details) == ([0, 1], "NOT_FOUND", {"n": 2})


@pytest.mark.gen_test(timeout=30)
async def test_a_stream_whose_connection_drops_raises_connection_closed():
    gateway = make_stream_gateway()
    async with listening(gateway) as url, Client(url) as client:
        items = client.stream("feed", "count", {"upto": 5, "hold_at": 1})
        assert (await anext(items))["n"] == 0
        for session in gateway.hub.sessions:
            session.close(1011, "gone")
        with pytest.raises(ConnectionClosed):
            await anext(items)
    await wait_until(lambda: gateway.state["probe"].closed == 1, 5)
