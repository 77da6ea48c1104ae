"""``__schema__``: the whole contract as JSON Schema, produced by apispec."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator
from marshmallow import Schema, ValidationError

from drizzle_gateway.contract.introspection import ISO_DATETIME
from drizzle_gateway.wire.codec import encode
from examples.chat.app import make_gateway as chat_gateway
from tests.support import described
from tests.support.described import action_of, topic_of, validator
from tests.support.inprocess import InProcess
from tests.support.serve_app import make_gateway as make_test_gateway


def resolve(document: dict, node: dict) -> dict:
    ref = node.get("$ref")
    if ref is None:
        return node
    assert ref.startswith("#/components/schemas/")
    return document["components"]["schemas"][ref.rsplit("/", 1)[1]]


@pytest.mark.gen_test
async def test_schema_describes_resources_actions_and_topics(test_client):
    client = await test_client()
    document = await client.schema()
    assert document["protocol"] == "drizzle.v1"
    todos = next(r for r in document["resources"] if r["name"] == "todos")
    assert todos["description"] == "The shared todo list."
    actions = {a["name"]: a for a in todos["actions"]}
    assert set(actions) == {"create", "get", "list", "update", "watch", "search"}
    assert [name for name, act in actions.items() if act["stream"]] == ["search"]
    create = actions["create"]
    assert create["description"] == 'Add a todo; subscribers of "todos" hear about it.'
    new_todo = resolve(document, create["input"])
    assert new_todo["required"] == ["title"]
    assert new_todo["properties"]["title"] == {"type": "string", "minLength": 1, "maxLength": 200}
    todo = resolve(document, create["output"])
    assert set(todo["properties"]) == {"id", "title", "done", "tags", "owner"}
    assert resolve(document, todo["properties"]["owner"])["properties"]["email"]["format"] == "email"
    assert actions["list"]["output"]["type"] == "array"
    assert actions["watch"]["input"] is None and actions["watch"]["output"] is None

    topics = {t["name"]: t for t in document["topics"]}
    assert topics["chat.{room}"]["params"] == ["room"]
    assert topics["chat.{room}"]["client_publish"] is True
    assert topics["todos"]["client_publish"] is False and topics["todos"]["client_subscribe"] is True
    assert topics["hidden"]["client_subscribe"] is False
    message = resolve(document, topics["chat.{room}"]["payload"])
    assert message["properties"]["text"]["maxLength"] == 100
    assert {b["name"] for b in document["builtins"]} == {
        "__ping__", "__schema__", "__subscribe__", "__unsubscribe__", "__publish__", "__auth__",
        "__history__", "__cancel__", "__presence__"}


@pytest.mark.gen_test
async def test_schema_payloads_are_valid_json_schema_that_accept_real_payloads(test_client):
    client = await test_client()
    document = await client.schema()
    topic = next(t for t in document["topics"] if t["name"] == "chat.{room}")
    schema = {**topic["payload"], "components": document["components"]}
    validator = Draft202012Validator(schema)
    assert validator.is_valid({"author": {"name": "ada"}, "text": "hi"})
    assert not validator.is_valid({"author": {"name": "ada"}, "text": "x" * 101})
    assert not validator.is_valid({"text": "hi"})


# -- what marshmallow really loads and dumps (tests/support/described.py) ---------------------------------


def component(document: dict, node: dict) -> dict:
    """The component ``node`` refers to (through an array's ``items`` too)."""
    return resolve(document, node.get("items", node))


def loads(schema: Schema, data: object) -> bool:
    try:
        schema.load(data)
    except ValidationError:
        return False
    return True


@pytest.fixture(scope="module")
def document() -> dict:
    return json.loads(encode(described.make_gateway().schema()))


def test_a_oneofschema_is_one_of_its_type_schemas_with_its_discriminator(document):
    pet = resolve(document, action_of(document, "adopt")["output"])
    assert pet.keys() == {"oneOf", "discriminator"}
    cat, dog = (resolve(document, branch) for branch in pet["oneOf"])
    assert pet["discriminator"] == {"propertyName": "kind", "mapping": {
        "cat": pet["oneOf"][0]["$ref"], "dog": pet["oneOf"][1]["$ref"]}}
    assert cat["properties"]["kind"] == {"const": "cat"} and "kind" in cat["required"]
    assert cat["properties"]["name"] == {"type": "string"} and dog["properties"]["kind"] == {"const": "dog"}
    owner = resolve(document, action_of(document, "owner")["output"])["properties"]
    assert owner["pet"] == {"$ref": "#/components/schemas/Pet"}
    assert owner["pets"]["items"] == owner["more"]["items"] == {"$ref": "#/components/schemas/Pet"}
    assert owner["maybe"] == {"anyOf": [{"$ref": "#/components/schemas/Pet"}, {"type": "null"}]}
    assert action_of(document, "pets")["output"] == {"type": "array", "items": {"$ref": "#/components/schemas/Pet"}}


PETS = [described.TOM, described.REX, {"kind": "cat", "name": "Felix"}]
PET_PAYLOADS = [
    ({"kind": "cat", "name": "Tom", "lives": 9}, True),
    ({"kind": "dog", "bark": "woof", "weight": "12.50"}, True),
    ({"kind": "dog", "bark": "woof", "weight": 12.5}, True),
    ({"kind": "cat", "name": "Tom", "bark": "woof"}, False),  # Pet's unknown (RAISE) binds Cat
    ({"kind": "dog", "bark": "woof", "name": "Rex"}, False),  # and Dog, whose own Meta says EXCLUDE
    ({"kind": "cow", "name": "Tom"}, False),
    ({"name": "Tom"}, False),
    ({"kind": "cat"}, False),
    ({"kind": "dog", "bark": 1}, False),
]


@pytest.mark.parametrize(("payload", "valid"), PET_PAYLOADS)
def test_oneofschema_payloads_fit_their_component_exactly_when_marshmallow_loads_them(document, payload, valid):
    assert loads(described.Pet(), payload) is valid  # the oracle
    owner = {"name": "ada", "pet": payload, "pets": [payload], "more": [payload], "maybe": payload}
    assert loads(described.Owner(), owner) is valid
    inputs = [(action_of(document, "adopt")["input"], payload), (topic_of(document, "pets")["publish"], payload),
              (action_of(document, "owner")["input"], owner)]
    for node, data in inputs:
        assert validator(document, node).is_valid(data) is valid, (node, data)


def test_oneofschema_dumps_fit_their_component_wherever_they_are(document):
    dumped = [(action_of(document, "adopt")["output"], described.Pet().dump(pet)) for pet in PETS]
    dumped.append((action_of(document, "pets")["output"], described.Pet(many=True).dump(PETS)))
    dumped.append((action_of(document, "owner")["output"], described.Owner().dump(described.OWNER)))
    dumped.append((topic_of(document, "owners")["payload"], described.Owner().dump(described.OWNER)))
    dumped.append((topic_of(document, "pets")["payload"], described.Pet().dump(described.REX)))
    for node, data in dumped:
        errors = [e.message for e in validator(document, node).iter_errors(json.loads(encode(data)))]
        assert errors == [], (node, data)
    assert not validator(document, action_of(document, "adopt")["output"]).is_valid({"name": "Tom"})


def test_a_oneofschema_with_the_default_type_field_takes_and_sends_it(document):
    shape = resolve(document, action_of(document, "shape")["input"])
    assert shape["discriminator"]["propertyName"] == "type"
    for node in (action_of(document, "shape")["input"], action_of(document, "shape")["output"]):
        assert validator(document, node).is_valid({"type": "Circle", "name": "c"})
        assert not validator(document, node).is_valid({"name": "c"})
    assert described.Shape().dump({"name": "c"}) == {"type": "Circle", "name": "c"}


DECIMAL_TEXTS = ["19.99", "-0", "1.", ".5", "+.5e-3", "1E+2", "1_000", "1e1_0", "_1", "1_", "1__0.5_", " 1.5 ", "1.5\n",
                 "\u00a01.5", "NaN", "-Infinity", "inf", "INF", "sNaN", "-snan", "NaN12", "", " ", "_", ".", "e1", "1e",
                 "1e+", "0x10", "1,5", "1 5", "1 _", "_ 1", "- 1", "abc", "Infinit", "nan.5", "1.2.3"]


@pytest.mark.parametrize("text", DECIMAL_TEXTS)
def test_a_decimal_sent_as_a_string_fits_the_input_exactly_when_marshmallow_loads_it(document, text):
    """docs/protocol.md: a client that needs exact decimal input sends the digits as a string."""
    check = validator(document, action_of(document, "priced")["input"])
    for payload in ({"price": text}, {"price": "1", "text": text}, {"price": "1", "special": text}):
        assert check.is_valid(payload) is loads(described.Priced(), payload), payload


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(alphabet="0123456789_.+-eEsSnNaAiIfFtTyY \t", max_size=8))
def test_any_decimal_string_fits_the_input_exactly_when_marshmallow_loads_it(document, text):
    check = validator(document, action_of(document, "priced")["input"])
    for payload in ({"price": text}, {"price": "1", "special": text}):
        assert check.is_valid(payload) is loads(described.Priced(), payload), payload


def test_decimals_are_described_as_they_are_taken_and_sent(document):
    check = validator(document, action_of(document, "priced")["input"])
    for payload in ({"price": 19.99}, {"price": 1, "text": 2.5, "exact": None}, {"price": "1", "exact": "1.005"},
                    {"price": 1, "count": 3}):
        assert loads(described.Priced(), payload) and check.is_valid(payload), payload
    for payload in ({"price": None}, {"price": True}, {"price": 1, "special": None}, {"price": 1, "ratio": None},
                    {"price": [1]}):
        assert not loads(described.Priced(), payload) and not check.is_valid(payload), payload
    sent = validator(document, action_of(document, "priced")["output"])
    dumped = described.Priced().dump({"price": Decimal("1.10"), "text": Decimal("2.5"), "exact": None,
                                      "special": Decimal("NaN"), "ratio": float("inf"), "count": 3})
    assert dumped["text"] == "2.5" and dumped["special"].is_nan() and dumped["count"] == "3"
    assert list(sent.iter_errors(json.loads(encode(dumped)))) == []
    assert not sent.is_valid({"price": "1.10"})  # sent as a number: a string is not what replies carry
    assert not sent.is_valid({"price": 1, "text": 2.5})


def test_components_say_null_where_a_dump_can_be_null(document):
    """A missing attribute dumps its dump_default, None included; a dump-only field is never read back, so a None
    attribute is sent; allow_none says null fits both ways."""
    sent = validator(document, action_of(document, "nullable")["output"])
    for obj in ({"id": 1}, {"id": 1, "seen": None, "note": "n", "label": "l", "parent": {"name": "c"}, "tags": ["t"],
                            "stamp": None}):
        dumped = described.Nullable().dump(obj)
        assert list(sent.iter_errors(json.loads(encode(dumped)))) == [], dumped
    assert described.Nullable().dump({"id": 1}) == {"id": 1, "note": None, "label": None, "parent": None, "tags": None,
                                                    "version": 2}
    assert component(document, action_of(document, "nullable")["output"])["properties"]["version"]["const"] == 2
    taken = validator(document, action_of(document, "nullable")["input"])
    for payload in ({"id": 1, "label": None}, {"id": 1, "parent": None}, {"id": 1, "tags": None}):
        assert not loads(described.Nullable(), payload) and not taken.is_valid(payload), payload
    assert taken.is_valid({"id": 1, "label": "l"})


def test_a_reply_fits_its_output_though_load_only_fields_are_required(document):
    """Input-only ``required`` stays out of what replies carry; output-only ``required`` out of what requests do."""
    output = component(document, action_of(document, "account")["output"])
    assert "password" not in output.get("required", []) and "created" in output["required"]
    dumped = described.Account().dump({"name": "ada", "password": "s3cret", "created": dt.datetime(2024, 5, 17),
                                       "owner": described.OWNER})
    assert "password" not in dumped
    for node in (action_of(document, "account")["output"], topic_of(document, "accounts")["payload"]):
        assert list(validator(document, node).iter_errors(json.loads(encode(dumped)))) == []
    for node in (action_of(document, "account")["input"], topic_of(document, "accounts")["publish"]):
        taken = validator(document, node)
        assert loads(described.Account(), {"name": "ada", "password": "s3cret"})
        assert taken.is_valid({"name": "ada", "password": "s3cret"})
        assert not loads(described.Account(), {"name": "ada"}) and not taken.is_valid({"name": "ada"})


def test_dates_and_times_have_their_own_formats(document):
    """marshmallow 3's Date and Time are DateTimes: neither is a date-time."""
    dated = component(document, action_of(document, "dated")["output"])["properties"]
    assert dated["day"] == {"type": "string", "format": "date"}
    assert dated["at"] == {"type": "string"}  # format "time" needs an offset; a naive time is sent without one
    assert dated["aware"] == {"type": "string", "format": "date-time"}
    assert dated["stamp"]["pattern"] == dated["naive"]["pattern"] == ISO_DATETIME
    obj = {"day": dt.date(2024, 5, 17), "at": dt.time(9, 30, 15, 250), "stamp": dt.datetime(2024, 5, 17, 9, 30),
           "aware": dt.datetime(2024, 5, 17, 9, 30, tzinfo=dt.UTC), "naive": dt.datetime(2024, 5, 17, 9, 30)}
    dumped = json.loads(encode(described.Dated().dump(obj)))
    assert list(validator(document, action_of(document, "dated")["output"]).iter_errors(dumped)) == []
    assert not validator(document, action_of(document, "dated")["output"]).is_valid({"day": "2024-05-17T09:30:00"})


def test_a_custom_field_describes_itself(document):
    wallet = component(document, action_of(document, "wallet")["output"])["properties"]
    assert wallet["balance"] == {"type": "string", "pattern": r"^-?\d+\.\d\d$"}
    assert wallet["spare"] == {"type": ["string", "null"], "pattern": r"^-?\d+\.\d\d$"}
    assert wallet["share"] == {"type": "integer", "minimum": 0, "maximum": 50}
    assert wallet["code"] == {"type": "string", "pattern": r"^[0-9]+\.[0-9]{2}$", "description": "non-negative"}
    assert wallet["plain"] == {}
    dumped = json.loads(encode(described.Wallet().dump({"balance": 1250, "spare": None, "share": 7, "code": 3})))
    sent = validator(document, action_of(document, "wallet")["output"])
    assert list(sent.iter_errors(dumped)) == [] and not sent.is_valid({"balance": 12.5})


@pytest.mark.parametrize(("act", "data"), [
    ("adopt", {"kind": "dog", "bark": "woof", "weight": "12.50"}), ("adopt", {"kind": "cat", "name": "Tom"}),
    ("owner", {"name": "ada", "pet": {"kind": "cat", "name": "Tom"}, "pets": [{"kind": "dog", "bark": "w"}]}),
    ("pets", None), ("shape", {"type": "Circle", "name": "c"}), ("nullable", {"id": 1}),
    ("account", {"name": "ada", "password": "s3cret"}), ("priced", {"price": "1.10", "special": "NaN"}),
    ("dated", {"day": "2024-05-17", "at": "09:30:15", "stamp": "2024-05-17T09:30:00"}),
    ("wallet", {"balance": "12.50", "spare": None, "share": 7})])
def test_the_gateway_takes_the_payload_and_its_reply_fits_the_output(document, act, data):
    """Over the request path: a request fitting the advertised input is taken; the reply fits the output."""
    described_action = action_of(document, act)
    if data is not None:
        assert validator(document, described_action["input"]).is_valid(data)
    reply = asyncio.run(_ask(act, data))
    assert "data" in reply, reply
    assert list(validator(document, described_action["output"]).iter_errors(reply["data"])) == [], reply


async def _ask(act: str, data: object) -> dict:
    client = InProcess(described.make_gateway())
    try:
        return await client.ask("described", act, data)
    finally:
        await client.close()


def test_a_topic_with_presence_describes_its_member_schema_key_and_client_entry():
    document = chat_gateway().schema()
    (topic,) = document["topics"]
    presence = topic["presence"]
    assert (presence["key"], presence["client_presence"]) == ("name", True)
    member = resolve(document, presence["member"])
    assert member["properties"]["name"] == {"type": "string", "minLength": 1, "maxLength": 40,
                                            "description": "who is in the room (one member per name, however "
                                                           "many tabs)"}
    assert resolve(document, presence["input"])["required"] == ["name"]
    todo_topics = make_test_gateway().schema()["topics"]
    assert all(t["presence"] is None for t in todo_topics)
    asyncapi = chat_gateway().asyncapi()
    message = asyncapi["components"]["messages"]["topic.chat.room.presence"]
    assert message["payload"]["properties"]["presence"]["enum"] == ["join", "leave", "stale"]
    assert set(asyncapi["channels"]["topic.chat.room"]["messages"]) == {"event", "presence"}
