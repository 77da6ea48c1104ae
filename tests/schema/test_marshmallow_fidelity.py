"""Real-world marshmallow schemas on the wire: one regression test per defect of "Faithful to marshmallow".

Most run the request path and the fan-out in process (tests/support/inprocess.py);
the ones marked ``gen_test`` go through a real socket.
"""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal

import pytest
import tornado.web
from jsonschema import Draft202012Validator
from marshmallow import ValidationError, post_dump

from drizzle_gateway import Gateway, Topic
from tests.support.inprocess import InProcess, read
from tests.support.realworld import ADA_WIRE, CREATED, EnvelopeUser, User, UserSchema, ada, make_gateway, node_tree


def run(coroutine):
    return asyncio.run(coroutine)


def check_document(document: dict) -> None:
    """Every component of a ``__schema__`` document is valid JSON Schema 2020-12."""
    for name, component in document["components"]["schemas"].items():
        Draft202012Validator.check_schema(component)
        assert "null" not in json.dumps({k: v for k, v in component.items() if k != "default"}).replace(
            '"null"', ""), name


def output_view(document: dict) -> dict:
    """The components as outputs see them: as in OpenAPI 3.1, ``required`` on a writeOnly property binds inputs only."""
    schemas = json.loads(json.dumps(document["components"]["schemas"]))
    for schema in schemas.values():
        write_only = {name for name, prop in schema.get("properties", {}).items() if prop.get("writeOnly")}
        if "required" in schema:
            schema["required"] = [name for name in schema["required"] if name not in write_only]
    return {"schemas": schemas}


def component(document: dict, node: dict) -> dict:
    node = node.get("items", node)
    return document["components"]["schemas"][node["$ref"].rsplit("/", 1)[1]]



# -- Decimal can be sent ----------------------------------------------------------


@pytest.fixture
def app():
    return tornado.web.Application(make_gateway().routes())


@pytest.mark.gen_test
async def test_a_decimal_reply_carries_its_exact_digits_over_the_socket(raw):
    ws = await raw()
    await ws.send({"request_id": 1, "resource": "accounts", "action": "price"})
    text = await ws.ws.read_message()
    assert text == '{"request_id":1,"data":{"amount":12345678901234567890.123456789,"label":"0.10"}}'
    await ws.send({"request_id": 2, "resource": "accounts", "action": "user"})
    assert read(await ws.ws.read_message())["data"] == ADA_WIRE


def test_a_typed_topic_with_a_decimal_field_delivers_exact_digits():
    async def scenario():
        gateway = make_gateway()
        listener = InProcess(gateway)
        await listener.listen("prices")
        await gateway.publish("prices", {"amount": Decimal("0.1000000000000000000001")})
        return listener.frames

    assert run(scenario()) == ['{"topic":"prices","data":{"amount":0.1000000000000000000001}}']


def test_a_client_publish_with_decimals_is_delivered_exactly():
    async def scenario():
        gateway = make_gateway()
        publisher, listener = InProcess(gateway), InProcess(gateway)
        await listener.listen("prices", ["label"])
        reply = await publisher.ask(None, "__publish__", {"topic": "prices", "payload": {
            "amount": "12345678901234567890.5", "label": "0.10"}})
        return reply, listener.events()

    reply, events = run(scenario())
    assert reply == {"request_id": 1, "data": {"topic": "prices"}}
    assert events == [{"label": "0.10"}]


def test_schema_says_what_a_decimal_is_sent_as():
    document = make_gateway().schema()
    check_document(document)
    user = document["components"]["schemas"]["User"]
    assert user["properties"]["balance"] == {"type": "number"}
    assert user["properties"]["balance_text"]["type"] == ["string", "null"]  # dump-only: a None attribute is sent


# -- selection never widens -------------------------------------------------------


def test_fields_never_send_what_a_nested_exclude_hides():
    async def scenario():
        client = InProcess(make_gateway())
        todos = await client.ask("accounts", "todos", fields=["content", "user"])
        blog = await client.ask("accounts", "blog", fields=["title", "user"])
        asked_hidden = await client.ask("accounts", "todos", fields=["user.email"])
        return todos, blog, asked_hidden

    todos, blog, asked_hidden = run(scenario())
    user = {k: v for k, v in ADA_WIRE.items() if k != "email"}
    assert todos["data"] == [{"content": "milk", "user": user}]
    assert blog["data"] == {"title": "notes", "user": {k: v for k, v in ADA_WIRE.items() if k != "balance"}}
    assert (asked_hidden["code"], asked_hidden["details"]) == ("INVALID_FIELDS", {"fields": ["user.email"]})


def test_event_fields_never_send_what_a_nested_exclude_hides():
    async def scenario():
        gateway = make_gateway()
        listener = InProcess(gateway)
        await listener.listen("todo_items", ["content", "user"])
        await gateway.publish("todo_items", {"id": 1, "content": "milk", "user": ada()})
        return listener.events()

    assert run(scenario()) == [{"content": "milk", "user": {k: v for k, v in ADA_WIRE.items() if k != "email"}}]


# -- server-side publish takes what a reply takes ---------------------------------


def test_server_publish_takes_model_objects_dump_only_fields_and_attribute_names():
    async def scenario():
        gateway = make_gateway()
        listener, caller = InProcess(gateway), InProcess(gateway)
        await listener.listen("users")
        await gateway.publish("users", ada())
        as_dict = {"id": 7, "name": "bob", "first_name": "Bob", "email": "bob@example.com", "age": 90.0,
                   "balance": Decimal("1"), "homepage": "https://bob.example.com/", "created": CREATED}
        await gateway.publish("users", as_dict)
        reply = await caller.ask("accounts", "announce")
        return listener.events(), reply

    events, reply = run(scenario())
    assert reply["data"] == {"sent": True}
    assert events[0] == ADA_WIRE == events[2]
    assert events[1] == {"id": 7, "name": "bob", "firstName": "Bob", "email": "bob@example.com",
                         "age": Decimal("90.0"), "balance": 1, "balance_text": "1",
                         "homepage": "https://bob.example.com/", "created": CREATED.isoformat(),
                         "created_day": "2024-05-17", "is_old": True}


@pytest.mark.parametrize(("payload", "messages"), [
    ({"email": "x@example.com", "created": CREATED}, {"name": ["Missing data for required field."]}),
    (User("ada", "not an email"), {"email": ["Not a valid email address."]}),
    (User("", "ada@example.com"), {"name": ["Length must be between 1 and 40."]}),
    (User("ada", "ada@example.com", balance="lots"), {"balance": ["Not a valid number."],
                                                      "balance_text": ["Not a valid number."]}),
])
def test_server_publish_that_does_not_fit_raises_and_reaches_nobody(payload, messages):
    async def scenario():
        gateway = make_gateway()
        listener = InProcess(gateway)
        await listener.listen("users")
        with pytest.raises(ValidationError) as caught:
            await gateway.publish("users", payload)
        return caught.value.messages, listener.events()

    assert run(scenario()) == (messages, [])


# -- selection names are wire names -----------------------------------------------


def test_fields_use_the_names_clients_see():
    async def scenario():
        gateway = make_gateway()
        client, listener = InProcess(gateway), InProcess(gateway)
        by_wire = await client.ask("accounts", "user", fields=["firstName", "balance_text"])
        by_attribute = await client.ask("accounts", "user", fields=["first_name"])
        await listener.listen("users", ["firstName"])
        await gateway.publish("users", ada())
        return by_wire, by_attribute, listener.events()

    by_wire, by_attribute, events = run(scenario())
    assert by_wire["data"] == {"firstName": "Ada", "balance_text": "100.10"}
    assert (by_attribute["code"], by_attribute["details"]) == ("INVALID_FIELDS", {"fields": ["first_name"]})
    assert events == [{"firstName": "Ada"}]


def test_schema_property_names_are_the_selectable_names():
    document = make_gateway().schema()
    assert "firstName" in document["components"]["schemas"]["User"]["properties"]


# -- events and replies agree -----------------------------------------------------


@pytest.mark.parametrize(("channel", "action", "payload", "fields", "expected"), [
    ("envelopes", "envelope", {"name": "ada", "email": "ada@example.com"}, ["email"],
     {"user": {"email": "ada@example.com"}}),
    ("envelopes", "envelope", {"name": "ada", "email": "ada@example.com"}, None,
     {"user": {"name": "ada", "email": "ada@example.com"}}),
    ("nodes", "node", node_tree(), ["single.single.id"], {"single": {"single": {"id": 3}}}),
    ("nodes", "node", node_tree(), ["children.single.id", "id"], {"id": 1, "children": [{"single": {"id": 5}}]}),
])
def test_an_event_carries_exactly_what_a_reply_carries(channel, action, payload, fields, expected):
    async def scenario():
        gateway = make_gateway()
        client, listener = InProcess(gateway), InProcess(gateway)
        await listener.listen(channel, fields)
        await gateway.publish(channel, payload)
        reply = await client.ask("accounts", action, fields=fields)
        return reply["data"], listener.events()

    assert run(scenario()) == (expected, [expected])


@pytest.mark.gen_test
async def test_hooks_and_self_references_over_the_socket(connect):
    client, listener = await connect(), await connect()
    await listener.subscribe("envelopes", fields=["email"])
    await listener.subscribe("nodes", fields=["single.single.id"])
    assert await client.call("accounts", "envelope", fields=["email"]) == {"user": {"email": "ada@example.com"}}
    assert await client.call("accounts", "node", fields=["single.single.id"]) == {"single": {"single": {"id": 3}}}
    await client.call("accounts", "announce")


# -- __schema__ is true and valid -------------------------------------------------


def test_one_component_per_schema_variant():
    document = make_gateway().schema()
    check_document(document)
    actions = {a["name"]: a for a in document["resources"][0]["actions"]}
    excluded = component(document, component(document, actions["todos"]["output"])["properties"]["user"])
    plain = component(document, component(document, actions["todo"]["output"])["properties"]["user"])
    assert "email" not in excluded["properties"]
    assert "email" in plain["properties"]
    blog_user = component(document, component(document, actions["blog"]["output"])["properties"]["user"])
    assert "balance" not in blog_user["properties"] and "email" in blog_user["properties"]


def test_additional_properties_follow_unknown():
    document = make_gateway().schema()
    actions = {a["name"]: a for a in document["resources"][0]["actions"]}
    assert component(document, actions["strict"]["input"])["additionalProperties"] is False
    assert component(document, actions["lenient"]["input"])["additionalProperties"] is True
    assert component(document, actions["described"]["input"])["additionalProperties"] is False


def test_formats_are_json_schemas_and_nothing_is_null():
    document = make_gateway().schema()
    check_document(document)
    user = document["components"]["schemas"]["User"]["properties"]
    assert user["homepage"] == {"type": "string", "format": "uri"}
    # a naive datetime is dumped without an offset, which JSON Schema's date-time requires
    assert user["created"]["type"] == "string" and "format" not in user["created"] and user["created"]["pattern"]
    assert user["created_day"]["type"] == ["string", "null"] and "format" not in user["created_day"]
    assert "pattern" not in user["created_day"]


def test_replies_validate_against_the_schema_they_advertise():
    async def scenario():
        gateway = make_gateway()
        client = InProcess(gateway)
        document = gateway.schema()
        out = []
        for act in document["resources"][0]["actions"]:
            if act["output"] is not None and act["name"] != "envelope":  # a hook's reshaping is code, not schema
                reply = await client.ask("accounts", act["name"])
                out.append((act["output"], json.loads(json.dumps(reply["data"], default=float))))
        return document, out

    document, replies = run(scenario())
    for schema, data in replies:
        validator = Draft202012Validator({**schema, "components": output_view(document)},
                                         format_checker=Draft202012Validator.FORMAT_CHECKER)
        assert not list(validator.iter_errors(data)), (schema, data)


def test_user_schema_round_trip_is_marshmallows():
    # the oracle itself: what marshmallow dumps for the model is what ADA_WIRE says
    dumped = UserSchema().dump(ada())
    assert dumped["balance"] == Decimal("100.10") and dumped["firstName"] == "Ada"


def test_a_selection_through_a_hook_is_dumped_once_per_publish_not_per_subscriber():
    wraps: list[dict] = []

    class Counted(EnvelopeUser):
        @post_dump
        def count(self, data: dict, **kwargs) -> dict:
            wraps.append(data)
            return data

    async def scenario():
        gateway = Gateway([], [Topic("counted", Counted)])
        listeners = [InProcess(gateway) for _ in range(6)]
        for i, listener in enumerate(listeners):
            await listener.listen("counted", ["email"] if i % 2 else None)
        await gateway.publish("counted", {"name": "ada", "email": "ada@example.com"})
        return [listener.events() for listener in listeners]

    events = run(scenario())
    whole, selected = {"user": {"name": "ada", "email": "ada@example.com"}}, {"user": {"email": "ada@example.com"}}
    assert events == [[whole], [selected]] * 3
    assert len(wraps) == 2  # the full dump, and one for the ["email"] selection
