"""Typed topics, in process: subscribe, publish from server and client, validation before delivery, order."""

from __future__ import annotations

import asyncio

import pytest
from marshmallow import ValidationError

from drizzle_gateway.client import Event, RemoteError
from drizzle_gateway.contract.topics import Topic
from drizzle_gateway.wire.dialect import Dialect
from tests.support.inprocess import exchange
from tests.support.resources import chat

MESSAGE = {"author": {"name": "ada"}, "text": "hello"}


async def assert_no_event(client) -> None:
    """Nothing was delivered: a ping is answered with no event queued before it."""
    assert await client.ping() == "pong"
    assert client.events_now() == []


def test_topic_patterns_match_and_build_channels():
    assert chat.params == ["room"]
    assert chat.match("chat.lobby") == {"room": "lobby"}
    assert chat.match("chat.") is None and chat.match("chat.a.b") is None and chat.match("todos") is None
    assert chat.channel(room="lobby") == "chat.lobby"
    with pytest.raises(ValueError):
        chat.channel()
    with pytest.raises(ValueError):
        chat.channel(room="a.b")
    assert Topic("todos", None).match("todos") == {}


@pytest.mark.parametrize("pattern", ["notes.{board", "notes.board}", "notes.{board-id}", "notes.{}"])
def test_a_pattern_with_a_stray_brace_is_refused_naming_it(pattern):
    with pytest.raises(ValueError) as refused:
        Topic(pattern, None)
    assert str(refused.value).startswith(f"topic pattern {pattern!r} has an unmatched brace")


def test_a_pattern_naming_a_param_twice_is_refused():
    with pytest.raises(ValueError, match=r"topic pattern 'a\.\{x\}\.\{x\}' names the param 'x' more than once"):
        Topic("a.{x}.{x}", None)


@pytest.mark.gen_test
async def test_server_publish_reaches_subscribers_of_that_channel_only(gateway, test_client):
    lobby, kitchen = await test_client(), await test_client()
    assert await lobby.subscribe("chat.lobby") == {"topic": "chat.lobby"}
    await kitchen.subscribe("chat.kitchen")
    await gateway.publish("chat.{room}", MESSAGE, room="lobby")
    event = await lobby.next_event(2)
    assert (event.topic, event.data) == ("chat.lobby", MESSAGE)
    await assert_no_event(kitchen)


@pytest.mark.gen_test
async def test_publish_accepts_topic_object_pattern_or_channel(gateway, test_client):
    client = await test_client()
    await client.subscribe("chat.x")
    await gateway.publish(chat, {**MESSAGE, "seq": 1}, room="x")
    await gateway.publish("chat.{room}", {**MESSAGE, "seq": 2}, room="x")
    await gateway.publish("chat.x", {**MESSAGE, "seq": 3})
    assert [(await client.next_event(2)).data["seq"] for _ in range(3)] == [1, 2, 3]


@pytest.mark.gen_test
async def test_invalid_server_publish_raises_and_reaches_nobody(gateway, test_client):
    client = await test_client()
    await client.subscribe("chat.lobby")
    with pytest.raises(ValidationError) as caught:
        await gateway.publish("chat.{room}", {"author": {"name": "ada"}, "text": "x" * 101}, room="lobby")
    assert caught.value.messages == {"text": ["Longer than maximum length 100."]}
    with pytest.raises(ValidationError):
        await gateway.publish("nowhere", MESSAGE)
    with pytest.raises(ValidationError):
        await gateway.publish(Topic("undeclared", None), MESSAGE)
    await assert_no_event(client)


@pytest.mark.gen_test
async def test_client_publish_is_validated_before_anyone_sees_it(test_client):
    publisher, listener = await test_client(), await test_client()
    await listener.subscribe("chat.lobby")
    with pytest.raises(RemoteError) as caught:
        await publisher.publish("chat.lobby", {"author": {}, "text": "x" * 101})
    assert caught.value.code == "INVALID_DATA"
    assert caught.value.details == {"payload": {"author": {"name": ["Missing data for required field."]},
                                                "text": ["Longer than maximum length 100."]}}
    await assert_no_event(listener)
    assert await publisher.publish("chat.lobby", MESSAGE) == {"topic": "chat.lobby", "duplicate": False}
    assert (await listener.next_event(2)).data == MESSAGE


@pytest.mark.gen_test
async def test_client_publish_refused_where_not_allowed(test_client):
    client = await test_client()
    with pytest.raises(RemoteError) as caught:
        await client.publish("alerts", MESSAGE)
    assert caught.value.code == "FORBIDDEN"
    with pytest.raises(RemoteError) as caught:
        await client.subscribe("hidden")
    assert caught.value.code == "FORBIDDEN"
    for call in (client.publish("nowhere", MESSAGE), client.subscribe("nowhere"), client.unsubscribe("nowhere")):
        with pytest.raises(RemoteError) as caught:
            await call
        assert caught.value.code == "TOPIC_NOT_FOUND"


@pytest.mark.gen_test
async def test_unsubscribe_stops_events(gateway, test_client):
    client = await test_client()
    await client.subscribe("alerts")
    await client.unsubscribe("alerts")
    await gateway.publish("alerts", MESSAGE)
    await assert_no_event(client)


@pytest.mark.gen_test
async def test_subscription_is_in_effect_before_the_reply(gateway, test_client):
    client = await test_client()
    reply = await exchange(client, {"request_id": 1, "action": "__subscribe__", "data": {"topic": "alerts"}})
    assert reply == {"request_id": 1, "data": {"topic": "alerts"}}
    await gateway.publish("alerts", MESSAGE)
    assert client.events_now() == [Event("alerts", MESSAGE)]


@pytest.mark.gen_test
async def test_server_side_subscribe_is_in_effect_before_the_reply(test_client):
    joiner, speaker = await test_client(), await test_client()
    assert await joiner.call("lab", "join", {"room": "den"}) == {"joined": "den"}
    await speaker.call("lab", "announce", {"room": "den", "message": MESSAGE})
    assert (await joiner.next_event(2)).topic == "chat.den"


@pytest.mark.gen_test
async def test_events_reach_every_subscriber_in_publish_order(gateway, test_client):
    clients = [await test_client() for _ in range(3)]
    for client in clients:
        await client.subscribe("alerts")
    for seq in range(50):
        await gateway.publish("alerts", {**MESSAGE, "seq": seq})
    for client in clients:
        assert [(await client.next_event(2)).data["seq"] for _ in range(50)] == list(range(50))


@pytest.mark.gen_test
async def test_one_connections_publishes_arrive_in_the_order_sent(test_client):
    listener = await test_client()
    await listener.subscribe("chat.order")
    publisher = await test_client()
    # all sent before any reply: they run concurrently on the server (beyond max_in_flight, reading waits)
    replies = await asyncio.gather(*(publisher.publish("chat.order", {**MESSAGE, "seq": seq}) for seq in range(100)))
    assert replies == [{"topic": "chat.order", "duplicate": False}] * 100
    assert [(await listener.next_event(2)).data["seq"] for _ in range(100)] == list(range(100))


class CountingProtocol(Dialect):
    """drizzle.v1, counting how many event frames it encodes."""

    def __init__(self) -> None:
        self.encoded: list[str] = []

    def event(self, topic, data):
        self.encoded.append(topic)
        return super().event(topic, data)


class TestOneEncodePerView:
    """The gateway speaks `CountingProtocol`."""

    @pytest.fixture
    def counting(self) -> CountingProtocol:
        return CountingProtocol()

    @pytest.fixture
    def gateway_options(self, gateway_options, counting):
        return {"protocol": counting, **gateway_options}

    @pytest.mark.gen_test
    async def test_a_publish_is_encoded_once_per_field_selection_not_per_subscriber(
            self, gateway, test_client, counting):
        everything = [await test_client() for _ in range(4)]
        text_only = [await test_client() for _ in range(3)]
        for client in everything:
            await client.subscribe("alerts")
        for client in text_only:
            await client.subscribe("alerts", fields=["text"])
        await gateway.publish("alerts", MESSAGE)
        for client in everything:
            assert (await client.next_event(2)).data == MESSAGE
        for client in text_only:
            assert (await client.next_event(2)).data == {"text": "hello"}
        assert counting.encoded == ["alerts", "alerts"]
