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


class Msg(Schema):
    text = fields.Str()


class Wrong(Resource):
    name = "wrong"

    @action(input=Item, output=Msg)
    async def text(self, data):
        return "hello"  # should have been {"text": "hello"}

    @action(output=Msg)
    async def nothing(self, data):
        return None

    @action(output=Msg)
    async def many(self, data):
        return [{"text": "a"}]

    @action(output=Msg(many=True))
    async def one(self, data):
        return {"text": "a"}

    @action(output=Msg(many=True))
    async def items(self, data):
        return [{"text": "a"}, 7]

    @action(output=Msg)
    async def obj(self, data):
        return Item  # any object: its attributes are read (it has no "text")

    @action(output=Msg(many=True))
    async def gen(self, data):
        return ({"text": t} for t in "ab")


@pytest.mark.gen_test
@pytest.mark.parametrize(("name", "logged"), [
    ("text", "action 'text' returned 'hello' (str), which its output schema Msg cannot dump: return a dict or an "
             "object with the schema's attributes (declare the schema with many=True to return a list)"),
    ("nothing", "action 'nothing' returned None (NoneType), which its output schema Msg cannot dump"),
    ("many", "action 'many' returned a list, which its output schema Msg cannot dump"),
    ("one", "action 'one' returned one dict where many are declared, which its output schema Msg cannot dump: "
            "return a list of dicts or objects with the schema's attributes"),
    ("items", "action 'items' returned a list holding 7 (int), which its output schema Msg cannot dump"),
])
async def test_a_result_the_output_schema_cannot_dump_is_an_internal_error_logged_with_why(
        gateway, test_client, caplog, name, logged):
    gateway.add_resource(Wrong)
    client = await test_client()
    with caplog.at_level("ERROR", logger="drizzle_gateway"):
        answer = await exchange(client, call(1, "wrong", name, {"id": 1}))
    assert answer == {"request_id": 1, "code": "INTERNAL_ERROR",
                      "error": "internal error; the server log has the details"}
    assert any(logged in str(record.exc_info[1]) for record in caplog.records if record.exc_info), caplog.text


@pytest.mark.gen_test
async def test_objects_and_iterables_still_dump_through_the_output_schema(gateway, test_client):
    gateway.add_resource(Wrong)
    client = await test_client()
    assert await client.call("wrong", "obj") == {}
    assert await client.call("wrong", "gen") == [{"text": "a"}, {"text": "b"}]
