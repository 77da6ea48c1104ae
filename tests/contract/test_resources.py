"""Resources and actions, in process: what is reachable, how input and output are handled, what an action sees."""

from __future__ import annotations

import json

import pytest
from marshmallow import Schema, ValidationError, fields

from drizzle_gateway import Resource, action
from drizzle_gateway.client import RemoteError
from tests.support.inprocess import exchange
from tests.support.request_frames import call


async def remote_error(coro) -> RemoteError:
    with pytest.raises(RemoteError) as caught:
        await coro
    return caught.value


@pytest.mark.gen_test
async def test_create_loads_input_and_dumps_output(test_client):
    client = await test_client()
    todo = await client.call("todos", "create", {"title": "milk", "tags": ["shop"]})
    assert todo == {"id": 1, "title": "milk", "done": False, "tags": ["shop"],
                    "owner": {"name": "ada", "email": "ada@example.com"}}
    assert await client.call("todos", "list") == [todo]


@pytest.mark.gen_test
@pytest.mark.parametrize("name", ["helper", "_private", "not_an_action", "__init__", "__class__", "publish",
                                  "subscribe", "get_action", "user", "__drizzle_action__"])
async def test_only_decorated_methods_are_reachable(test_client, name):
    client = await test_client()
    error = await remote_error(client.call("lab", name))
    assert error.code == "ACTION_NOT_FOUND"


@pytest.mark.gen_test
async def test_plain_coroutine_and_async_actions(test_client):
    client = await test_client()
    assert await client.call("lab", "plain", {"x": 1}) == {"kind": "plain", "data": {"x": 1}}
    assert await client.call("lab", "legacy") == {"kind": "coroutine"}
    assert await client.call("lab", "sleep", {"seconds": 0, "tag": "a"}) == {"tag": "a"}


@pytest.mark.gen_test
async def test_action_sees_connection_gateway_and_user(test_client):
    client = await test_client()
    assert await client.call("lab", "whoami") == {"user": None, "has_connection": True, "has_gateway": True}


@pytest.mark.gen_test
async def test_action_error_from_example_carries_details(test_client):
    client = await test_client()
    error = await remote_error(client.call("todos", "get", {"id": 99}))
    assert (error.code, error.details) == ("NOT_FOUND", {"id": 99})


class Item(Schema):
    id = fields.Int(required=True)


class Items(Resource):
    """Actions whose input is declared ``many=True``, a single schema, or nothing."""

    name = "items"

    @action(input=Item(many=True))
    def add(self, data):
        """Add the items."""
        return {"ids": [item["id"] for item in data]}

    @action(input=Item)
    def one(self, data):
        """One item."""
        return data

    @action()
    def anything(self, data):
        """Whatever was sent."""
        return data


def marshmallow_answer(schema: Schema, data) -> dict:
    """What marshmallow makes of ``data``: its load, or its messages as the wire carries them."""
    try:
        return {"data": schema.load(data)}
    except ValidationError as error:
        return {"code": "INVALID_DATA", "error": "data does not match the action's input schema",
                "details": json.loads(json.dumps(error.messages))}


@pytest.mark.gen_test
@pytest.mark.parametrize("data", [[{"id": "1"}, {"id": 2}], [], [{"id": 1}, {"id": "x"}, {}], {"id": 1}, [[1]]])
async def test_an_input_declared_many_loads_as_marshmallow_loads_it(gateway, test_client, data):
    gateway.add_resource(Items)
    client = await test_client()
    answer = marshmallow_answer(Item(many=True), data)
    if "data" in answer:
        answer = {"data": {"ids": [item["id"] for item in answer["data"]]}}
    assert await exchange(client, call(1, "items", "add", data)) == {"request_id": 1, **answer}


@pytest.mark.gen_test
async def test_an_array_is_for_an_input_schema_to_load(gateway, test_client):
    gateway.add_resource(Items)
    client = await test_client()
    assert await exchange(client, call(1, "items", "one", [{"id": 1}])) == {
        "request_id": 1, **marshmallow_answer(Item(), [{"id": 1}])}  # {"_schema": ["Invalid input type."]}
    assert await exchange(client, call(2, "items", "anything", [1])) == {
        "request_id": 2, "code": "VALIDATION_ERROR", "error": "'data' must be a JSON object"}
    assert await exchange(client, call(3, "items", "anything", {"a": [1]})) == {"request_id": 3, "data": {"a": [1]}}


class Bare(Resource):
    name = "bare"

    @action
    async def hello(self, data):
        return {"hello": data}


@pytest.mark.gen_test
async def test_action_without_parentheses_is_an_action(gateway, test_client):
    gateway.add_resource(Bare)
    client = await test_client()
    assert Bare.get_action("hello") is not None
    assert await client.call("bare", "hello", {"x": 1}) == {"hello": {"x": 1}}


@pytest.mark.parametrize("keyword", ["input", "output"])
def test_an_action_schema_that_is_not_a_schema_is_refused_at_declaration(keyword):
    with pytest.raises(TypeError) as refused:
        action(**{keyword: {"title": "str"}})
    assert str(refused.value) == (f"@action({keyword}=...) takes a marshmallow Schema class or instance, "
                                  "not {'title': 'str'}")
