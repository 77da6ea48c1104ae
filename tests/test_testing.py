"""`drizzle_gateway.testing.TestClient`: the real request and publish paths in process, seen as a client sees them."""

from __future__ import annotations

import asyncio
import contextlib

import pytest
from marshmallow import Schema, fields

from drizzle_gateway import Gateway, Limits, Resource, Topic, action
from drizzle_gateway.client import ConnectionClosed, RemoteError
from drizzle_gateway.runtime.auth import Credentials
from drizzle_gateway.testing import TestClient
from tests.support.polling import wait_until
from tests.support.resources import Message
from tests.support.serve_app import make_gateway
from tests.support.streaming import make_stream_gateway

# One conversation, played by a websocket Client and by a TestClient: each step's outcome as data.
CONVERSATION = [
    ("call", ("todos", "create", {"title": "milk"}), {"fields": ["title", "done"]}),
    ("call", ("todos", "create", {"title": ""}), {}),
    ("call", ("todos", "create", {"title": "x", "bogus": 1}), {}),
    ("call", ("todos", "list"), {"fields": ["nope"]}),
    ("call", ("nowhere", "list"), {}),
    ("call", ("todos", "fly"), {}),
    ("call", ("lab", "fail"), {}),
    ("call", ("lab", "plain", {"a": [1, 2.5, None, "é"]}), {}),
    ("subscribe", ("chat.lobby",), {"fields": ["text", "author.name"]}),
    ("subscribe", ("hidden",), {}),
    ("subscribe", ("undeclared.topic",), {}),
    ("publish", ("chat.lobby", {"author": {"name": "ada", "email": "a@x"}, "text": "hi", "seq": 1}), {}),
    ("publish", ("chat.lobby", {"author": {}, "text": "t" * 101}), {}),
    ("publish", ("alerts", {"author": {"name": "ada"}, "text": "hi"}), {}),
    ("event", (), {}),
    ("unsubscribe", ("chat.lobby",), {}),
    ("ping", (), {}),
]


async def play(client) -> list:
    """What each step of `CONVERSATION` gave the client: ("ok", data) or ("error", code, message, details)."""
    outcomes = []
    for method, args, kwargs in CONVERSATION:
        try:
            if method == "event":
                event = await client.next_event(2)
                result = (event.topic, event.data)
            else:
                result = await getattr(client, method)(*args, **kwargs)
        except RemoteError as exc:
            outcomes.append(("error", exc.code, exc.message, exc.details))
        else:
            outcomes.append(("ok", result))
    return outcomes


@pytest.mark.gen_test
async def test_a_test_client_sees_what_a_websocket_client_sees(connect, gateway):
    over_socket = await play(await connect())
    async with TestClient(gateway) as client:
        in_process = await play(client)
    assert in_process == over_socket
    codes = [outcome[1] for outcome in in_process if outcome[0] == "error"]
    assert codes == ["INVALID_DATA", "INVALID_DATA", "INVALID_FIELDS", "RESOURCE_NOT_FOUND", "ACTION_NOT_FOUND",
                     "INTERNAL_ERROR", "FORBIDDEN", "TOPIC_NOT_FOUND", "INVALID_DATA", "FORBIDDEN"]
    assert ("ok", ("chat.lobby", {"text": "hi", "author": {"name": "ada"}})) in in_process


class Token(Schema):
    token = fields.Str()


def authenticate(credentials: Credentials):
    token = credentials.token or credentials.headers.get("Authorization", "").removeprefix("Bearer ")
    return {"name": token} if token in ("ada", "bob") else None


class Me(Resource):
    name = "me"

    @action()
    async def who(self, data):
        return self.user


@pytest.mark.gen_test
async def test_the_handshake_headers_and_auth_reach_the_authenticate_hook():
    gateway = Gateway([Me], authenticate=authenticate)
    async with TestClient(gateway, headers={"Authorization": "Bearer ada"}) as client:
        assert await client.call("me", "who") == {"name": "ada"}
    async with TestClient(gateway) as anonymous:
        with pytest.raises(RemoteError) as refused:
            await anonymous.call("me", "who")
        assert refused.value.code == "UNAUTHENTICATED"
        assert await anonymous.request({"action": "__auth__", "data": {"token": "bob"}}) == {"authenticated": True}
        assert await anonymous.call("me", "who") == {"name": "bob"}


@pytest.mark.gen_test
async def test_an_unauthenticated_session_is_closed_after_auth_timeout():
    gateway = Gateway([Me], authenticate=authenticate, limits=Limits(auth_timeout=0.05))
    async with TestClient(gateway) as client:
        with pytest.raises(ConnectionClosed) as closed:
            await client.next_event(2)
        assert closed.value.code == 4001
        assert not gateway.hub.sessions


class Slow(Resource):
    name = "slow"
    running = 0
    most = 0

    @action()
    async def echo(self, data):
        Slow.running += 1
        Slow.most = max(Slow.most, Slow.running)
        try:
            await asyncio.sleep(0.001)
        finally:
            Slow.running -= 1
        return data


@pytest.mark.gen_test
async def test_requests_beyond_max_in_flight_wait_and_are_all_answered():
    gateway = Gateway([Slow], limits=Limits(max_in_flight=4, rate=None))
    Slow.most = 0
    async with TestClient(gateway) as client:
        replies = await asyncio.gather(*(client.call("slow", "echo", {"n": n}) for n in range(100)))
    assert replies == [{"n": n} for n in range(100)]
    assert Slow.most == 4


@pytest.mark.gen_test
async def test_closing_cancels_running_requests_and_drops_subscriptions(gateway):
    client = await TestClient(gateway).connect()
    await client.subscribe("chat.lobby")
    sleeping = asyncio.ensure_future(client.call("lab", "sleep", {"seconds": 30, "tag": "t"}))
    await wait_until(lambda: client.session.tasks, 5)
    task = next(iter(client.session.tasks))
    await client.close()
    with pytest.raises(ConnectionClosed):
        await sleeping
    assert task.cancelled()
    assert gateway.hub.fanout.subscribers("chat.lobby") == 0
    assert not gateway.hub.sessions


@pytest.mark.gen_test
async def test_gateway_close_ends_the_session_with_going_away(gateway):
    client = await TestClient(gateway).connect()
    await gateway.close()
    with pytest.raises(ConnectionClosed) as closed:
        await client.ping()
    assert closed.value.code == 1001
    with pytest.raises(ConnectionClosed):
        await TestClient(gateway).connect()


@pytest.mark.gen_test
async def test_reconnect_recovers_what_was_published_meanwhile():
    gateway = Gateway(topics=[Topic("feed", Message, history=10)])
    async with TestClient(gateway) as client:
        await client.subscribe("feed")
        await gateway.publish("feed", {"author": {"name": "a"}, "text": "1"})
        assert (await client.next_event(1)).offset == 1
        await client.close()
        for text in "23":
            await gateway.publish("feed", {"author": {"name": "a"}, "text": text})
        replies = await client.reconnect()
        assert replies["feed"]["recovered"] is True
        assert [(await client.next_event(1)).data["text"] for _ in range(2)] == ["2", "3"]


@pytest.mark.gen_test
async def test_exchange_returns_the_error_frame_of_a_malformed_request():
    async with TestClient(make_gateway()) as client:
        frame = await client.exchange('{"action": "__ping__"}')
        assert frame["code"] == "VALIDATION_ERROR" and frame["request_id"] is None
        assert await client.exchange('{"request_id": 3, "action": "__ping__"}') == {"request_id": 3, "data": "pong"}


@pytest.mark.gen_test(timeout=20)
async def test_a_test_client_streams_and_cancels_as_a_socket_client_does():
    gateway = make_stream_gateway()
    probe = gateway.state["probe"]
    async with TestClient(gateway) as client:
        assert [item async for item in client.stream("feed", "count", {"upto": 3}, fields=["n"])] == [
            {"n": 0}, {"n": 1}, {"n": 2}]
        async with contextlib.aclosing(client.stream("feed", "count", {"upto": 10, "hold_at": 2})) as items:
            async for item in items:
                if item["n"] == 1:
                    break
        assert probe.closed == 2 and len(client.session.streams) == 0
        with pytest.raises(RemoteError) as failed:
            async for _ in client.stream("feed", "count", {"upto": 3, "fail_at": 0}):
                pass
        assert failed.value.code == "NOT_FOUND"
