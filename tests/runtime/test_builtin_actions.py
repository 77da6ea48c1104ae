"""The built-in actions every gateway answers (requested without a resource), each refusal with its exact frame.

``__ping__``, ``__schema__``, ``__auth__``, ``__subscribe__``, ``__history__``,
``__unsubscribe__`` and ``__publish__``, in process through `TestClient`:
their inputs, their replies, and who may use them. Recovery with ``since``
is tested at length in tests/brokers/test_memory.py.
"""

from __future__ import annotations

from dataclasses import dataclass

import marshmallow_dataclass
import pytest
from marshmallow import ValidationError

from drizzle_gateway import Topic
from drizzle_gateway.client import RemoteError
from drizzle_gateway.runtime.builtin_actions import BuiltinActions
from tests.support.inprocess import exchange
from tests.support.resources import Message

MESSAGE = {"author": {"name": "ada"}, "text": "hi"}
feed = Topic("feed.{room}", Message, history=5, client_publish=True)


@pytest.fixture
def gateway(gateway):
    """The test gateway plus ``feed.{room}``, a topic with history clients may publish to."""
    gateway.add_topic(feed)
    return gateway


def builtin(request_id: int, name: str, **data) -> dict:
    return {"request_id": request_id, "action": name, "data": data}


def test_the_builtins_are_the_gateways_own_resource():
    assert BuiltinActions.name == "__gateway__"
    assert {name: BuiltinActions.get_action(name) is not None for name in (
        "__ping__", "__schema__", "__auth__", "__subscribe__", "__history__", "__unsubscribe__", "__publish__",
        "subscribe_channel")} == {"__ping__": True, "__schema__": True, "__auth__": True, "__subscribe__": True,
                                  "__history__": True, "__unsubscribe__": True, "__publish__": True,
                                  "subscribe_channel": False}


@pytest.mark.gen_test
async def test_ping_answers_pong_and_schema_lists_the_builtins(test_client):
    client = await test_client()
    assert await exchange(client, builtin(1, "__ping__")) == {"request_id": 1, "data": "pong"}
    document = (await exchange(client, builtin(2, "__schema__")))["data"]
    assert {"__ping__", "__schema__", "__auth__", "__subscribe__", "__history__", "__unsubscribe__",
            "__publish__"} <= {entry["name"] for entry in document["builtins"]}


@pytest.mark.gen_test
async def test_auth_on_a_gateway_without_authenticate_is_refused(test_client):
    client = await test_client()
    assert await exchange(client, builtin(1, "__auth__", token="t")) == {
        "request_id": 1, "code": "UNAUTHENTICATED", "error": "this gateway does not authenticate"}
    refused = await exchange(client, builtin(2, "__auth__"))
    assert (refused["code"], refused["details"]) == ("INVALID_DATA", {"token": ["Missing data for required field."]})


@pytest.mark.gen_test
async def test_subscribe_answers_the_topic_and_on_history_its_position(test_client):
    client = await test_client()
    assert await exchange(client, builtin(1, "__subscribe__", topic="chat.lobby")) == {
        "request_id": 1, "data": {"topic": "chat.lobby"}}
    logged = (await exchange(client, builtin(2, "__subscribe__", topic="feed.lobby")))["data"]
    assert set(logged) == {"topic", "epoch", "offset"} and logged["offset"] == 0
    since = {"epoch": logged["epoch"], "offset": 0}
    assert (await exchange(client, builtin(3, "__subscribe__", topic="feed.lobby", since=since)))["data"] == {
        **logged, "recovered": True}
    assert (await exchange(client, builtin(4, "__subscribe__", topic="chat.lobby", since=since)))["data"] == {
        "topic": "chat.lobby", "recovered": False}  # no history: nothing could be replayed


@pytest.mark.gen_test
async def test_subscribe_refuses_undeclared_and_server_only_topics(test_client):
    client = await test_client()
    assert await exchange(client, builtin(1, "__subscribe__", topic="nowhere")) == {
        "request_id": 1, "code": "TOPIC_NOT_FOUND", "error": "topic 'nowhere' is not declared"}
    assert await exchange(client, builtin(2, "__subscribe__", topic="hidden")) == {
        "request_id": 2, "code": "FORBIDDEN", "error": "clients may not subscribe to 'hidden'"}
    negative = await exchange(client, builtin(3, "__subscribe__", topic="feed.a", since={"epoch": "e", "offset": -1}))
    assert (negative["code"], negative["details"]) == (
        "INVALID_DATA", {"since": {"offset": ["Must be greater than or equal to 0."]}})


@pytest.mark.gen_test
async def test_history_gives_the_retained_events_with_their_offsets(gateway, test_client):
    for n in range(3):
        await gateway.publish(feed, {**MESSAGE, "seq": n}, room="a")
    client = await test_client()
    page = (await exchange(client, builtin(1, "__history__", topic="feed.a", limit=2, fields=["seq"])))["data"]
    assert (page["topic"], page["offset"], page["events"]) == (
        "feed.a", 3, [{"offset": 2, "data": {"seq": 1}}, {"offset": 3, "data": {"seq": 2}}])
    assert "recovered" not in page
    since = {"epoch": page["epoch"], "offset": 1}
    after = (await exchange(client, builtin(2, "__history__", topic="feed.a", since=since, fields=["seq"])))["data"]
    assert (after["events"], after["recovered"]) == ([{"offset": 2, "data": {"seq": 1}},
                                                      {"offset": 3, "data": {"seq": 2}}], True)


@pytest.mark.gen_test
async def test_history_refuses_topics_without_history_and_a_limit_below_one(test_client):
    client = await test_client()
    assert await exchange(client, builtin(1, "__history__", topic="chat.a")) == {
        "request_id": 1, "code": "INVALID_DATA", "error": "topic 'chat.{room}' keeps no history",
        "details": {"topic": ["this topic keeps no history"]}}
    zero = await exchange(client, builtin(2, "__history__", topic="feed.a", limit=0))
    assert (zero["code"], zero["details"]) == ("INVALID_DATA", {"limit": ["Must be greater than or equal to 1."]})
    assert (await exchange(client, builtin(3, "__history__", topic="hidden")))["code"] == "FORBIDDEN"


@pytest.mark.gen_test
async def test_unsubscribe_answers_the_topic_and_refuses_undeclared_ones(test_client):
    client = await test_client()
    await exchange(client, builtin(1, "__subscribe__", topic="chat.a"))
    assert await exchange(client, builtin(2, "__unsubscribe__", topic="chat.a")) == {
        "request_id": 2, "data": {"topic": "chat.a"}}
    assert (await exchange(client, builtin(3, "__unsubscribe__", topic="nowhere")))["code"] == "TOPIC_NOT_FOUND"


@pytest.mark.gen_test
async def test_publish_checks_the_topic_then_the_payload(test_client):
    listener = await test_client()
    await listener.subscribe("chat.a")
    client = await test_client()
    assert await exchange(client, builtin(1, "__publish__", topic="alerts", payload=MESSAGE)) == {
        "request_id": 1, "code": "FORBIDDEN", "error": "clients may not publish to 'alerts'"}
    assert await exchange(client, builtin(2, "__publish__", topic="chat.a", payload={"text": 1})) == {
        "request_id": 2, "code": "INVALID_DATA", "error": "payload does not match the topic's schema",
        "details": {"payload": {"author": ["Missing data for required field."], "text": ["Not a valid string."]}}}
    assert listener.events_now() == []
    assert await exchange(client, builtin(3, "__publish__", topic="chat.a", payload=MESSAGE)) == {
        "request_id": 3, "data": {"topic": "chat.a"}}
    assert (await listener.next_event(5)).data == MESSAGE


@dataclass
class Pick:
    value: int | str


picks = Topic("picks", marshmallow_dataclass.class_schema(Pick), client_publish=True)
"""A topic whose schema has marshmallow_dataclass's ``Union`` field (its messages hold ``ValidationError`` objects)."""


@pytest.mark.gen_test
async def test_a_publish_that_fails_a_union_answers_invalid_data(gateway, test_client):
    gateway.add_topic(picks)
    listener = await test_client()
    await listener.subscribe("picks")
    client = await test_client(timeout=5)
    with pytest.raises(ValidationError) as caught:
        picks.schema.load({"value": [1]})
    assert [error.messages for error in caught.value.messages["value"]] == [["Not a valid integer."],
                                                                           ["Not a valid string."]]
    assert await exchange(client, builtin(1, "__publish__", topic="picks", payload={"value": [1]})) == {
        "request_id": 1, "code": "INVALID_DATA", "error": "payload does not match the topic's schema",
        "details": {"payload": {"value": [["Not a valid integer."], ["Not a valid string."]]}}}
    assert await exchange(client, builtin(2, "__publish__", topic="picks", payload={"value": "a"})) == {
        "request_id": 2, "data": {"topic": "picks"}}
    assert (await listener.next_event(5)).data == {"value": "a"}


@pytest.mark.parametrize("key", ["a:b", "", "x" * 65, "abc\n", 7])
@pytest.mark.gen_test
async def test_publish_refuses_a_malformed_idempotency_key_and_delivers_nothing(test_client, key):
    reader, publisher = await test_client(), await test_client()
    await reader.subscribe("chat.keys")
    payload = {"author": {"name": "a"}, "text": "x"}
    with pytest.raises(RemoteError) as refused:
        await publisher.request({"action": "__publish__",
                                 "data": {"topic": "chat.keys", "payload": payload, "idempotency_key": key}})
    assert refused.value.code == "INVALID_DATA" and list(refused.value.details) == ["idempotency_key"]
    assert len(refused.value.details["idempotency_key"]) == 1
    assert await publisher.publish("chat.keys", {**payload, "text": "next"}) == {"topic": "chat.keys",
                                                                                "duplicate": False}
    assert (await reader.next_event(2)).data["text"] == "next"
