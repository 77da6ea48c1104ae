"""The AsyncAPI 3.0 document: one source with ``__schema__``, valid for @asyncapi/parser."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from drizzle_gateway import Gateway
from drizzle_gateway.wire.codec import encode
from examples.chat.app import make_gateway as chat_gateway
from examples.todo.app import make_gateway as todo_gateway
from tests.support.described import make_gateway as described_gateway
from tests.support.differential import make_gateway as every_field_gateway
from tests.support.node_tools import ASYNCAPI_PARSER, CONTRACT, ROOT, require, run_node
from tests.support.realworld import make_gateway as realworld_gateway

COMMAND = str(Path(sys.executable).with_name("drizzle-gateway"))


def refs(node: object) -> list[str]:
    """Every ``$ref`` in ``node``."""
    if isinstance(node, dict):
        own = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return own + [r for v in node.values() for r in refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in refs(v)]
    return []


def resolve(document: dict, ref: str) -> object:
    target: object = document
    for part in ref.removeprefix("#/").split("/"):
        assert isinstance(target, dict), ref
        target = target[part.replace("~1", "/").replace("~0", "~")]
    return target


def test_cli_writes_an_asyncapi_document_of_the_todo_example():
    out = subprocess.run([COMMAND, "schema", "--format", "asyncapi", "--server", "api.example.com:443",
                          "examples.todo.app:gateway"], cwd=ROOT, capture_output=True, text=True, timeout=60,
                         check=True).stdout
    document = json.loads(out)
    assert document["asyncapi"] == "3.0.0"
    assert document["info"]["title"] == "todo example"
    assert document["servers"]["gateway"] == {
        "host": "api.example.com:443", "protocol": "ws", "pathname": "/ws",
        "description": "JSON text frames; websocket subprotocol drizzle.v1 (or none)."}
    create = document["operations"]["todos.create"]
    assert create["action"] == "receive"
    assert create["reply"]["messages"] == [{"$ref": "#/channels/todos.create/messages/reply"},
                                           {"$ref": "#/channels/todos.create/messages/error"}]
    request = document["components"]["messages"]["todos.create.request"]["payload"]
    assert request["properties"]["data"] == {"$ref": "#/components/schemas/NewTodo"}
    assert request["required"] == ["request_id", "resource", "action", "data"]
    assert document["channels"]["topic.todos"]["address"] == "todos"


def test_a_streaming_action_answers_with_items_then_an_end():
    document = todo_gateway().asyncapi()
    search = document["operations"]["todos.search"]
    assert search["x-stream"] is True and "x-stream" not in document["operations"]["todos.create"]
    assert search["reply"]["messages"] == [{"$ref": f"#/channels/todos.search/messages/{kind}"}
                                           for kind in ("item", "end", "error")]
    messages = document["components"]["messages"]
    assert "todos.search.reply" not in messages
    item, end = messages["todos.search.item"]["payload"], messages["todos.search.end"]["payload"]
    assert item["properties"]["data"] == {"$ref": "#/components/schemas/Todo"}
    assert (item["properties"]["more"], item["required"]) == ({"const": True}, ["request_id", "data", "more"])
    assert (end["properties"]["more"], end["required"]) == ({"const": False}, ["request_id", "more"])


def test_default_format_is_still_the_schema_document():
    out = subprocess.run([COMMAND, "schema", "examples.chat.app:gateway"], cwd=ROOT, capture_output=True,
                         text=True, timeout=60, check=True).stdout
    assert json.loads(out) == json.loads(encode(chat_gateway().schema()))


@pytest.mark.parametrize("make", [todo_gateway, chat_gateway, every_field_gateway, realworld_gateway,
                                  described_gateway], ids=["todo", "chat", "every-field", "realworld", "described"])
def test_payloads_are_the_schema_components(make):
    """One source: the same components, and every payload's $ref lands in them."""
    gateway: Gateway = make()
    schema, document = gateway.schema(), gateway.asyncapi()
    assert document["components"]["schemas"].keys() == schema["components"]["schemas"].keys()
    for name, component in schema["components"]["schemas"].items():
        if "prefixItems" not in encode(component) and "discriminator" not in component:
            assert json.loads(encode(document["components"]["schemas"][name])) == json.loads(encode(component))
    for ref in refs(document):
        resolve(document, ref)  # raises if it points nowhere
    for ref in refs(schema):
        resolve(schema, ref)


def test_a_parameterised_topic_is_a_channel_with_its_parameters():
    document = chat_gateway().asyncapi()
    channel = document["channels"]["topic.chat.room"]
    assert channel["address"] == "chat.{room}"
    assert list(channel["parameters"]) == ["room"]
    assert channel["x-client-publish"] is True
    event = resolve(document, channel["messages"]["event"]["$ref"])
    assert event["payload"]["properties"]["data"] == {"$ref": "#/components/schemas/ChatMessage"}


def test_a_tuple_is_spelt_for_draft_07_readers():
    component = every_field_gateway().asyncapi()["components"]["schemas"]["Case_tuple"]
    assert component["properties"]["value"]["items"] == [{"type": "string"}, {"type": "integer"}]
    assert component["properties"]["value"]["additionalItems"] == {"not": {}}
    assert "prefixItems" not in component["properties"]["value"]


@pytest.mark.timeout(180)
def test_asyncapi_parser_finds_no_error(tmp_path):
    """@asyncapi/parser: 0 errors and 0 error diagnostics for both examples and every marshmallow field."""
    require(ASYNCAPI_PARSER)
    files = []
    for name, make in [("todo", todo_gateway), ("chat", chat_gateway), ("every-field", every_field_gateway),
                       ("realworld", realworld_gateway), ("described", described_gateway)]:
        path = tmp_path / f"{name}.json"
        path.write_text(encode(make().asyncapi()))
        files.append(path)
    result = run_node(CONTRACT / "validate-asyncapi.mjs", *files, timeout=170)
    reports = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(Path(r["file"]).stem, r["parsed"], r["errors"]) for r in reports] == [
        ("todo", True, 0), ("chat", True, 0), ("every-field", True, 0), ("realworld", True, 0),
        ("described", True, 0)], result.stderr
    assert result.returncode == 0, result.stdout + result.stderr
    for report in reports:
        assert all(d["severity"] != 0 for d in report["diagnostics"]), report


def test_a_oneofschema_is_spelt_for_asyncapi_and_its_payload_is_required():
    """AsyncAPI's discriminator is the property's name; the mapping is __schema__'s alone."""
    gateway = described_gateway()
    document, schema = gateway.asyncapi(), gateway.schema()
    pet = document["components"]["schemas"]["Pet"]
    assert pet == {**schema["components"]["schemas"]["Pet"], "discriminator": "kind"}
    assert pet["oneOf"] == [{"$ref": "#/components/schemas/Pet_cat"}, {"$ref": "#/components/schemas/Pet_dog"}]
    request = document["components"]["messages"]["described.adopt.request"]["payload"]
    assert request["properties"]["data"] == {"$ref": "#/components/schemas/Pet-Input"}
    assert "data" in request["required"]
    event = document["components"]["messages"]["topic.pets.event"]["payload"]
    assert event["properties"]["data"] == {"$ref": "#/components/schemas/Pet"}


def test_the_validator_does_report_an_invalid_document(tmp_path):
    """The check above can fail: an operation pointing at a missing channel is an error."""
    require(ASYNCAPI_PARSER)
    document = todo_gateway().asyncapi()
    document["operations"]["todos.create"]["channel"] = {"$ref": "#/channels/nowhere"}
    path = tmp_path / "broken.json"
    path.write_text(encode(document))
    result = run_node(CONTRACT / "validate-asyncapi.mjs", path)
    assert result.returncode == 1
    assert json.loads(result.stdout)["errors"] > 0


def test_cli_writes_documents_with_decimal_constants(tmp_path):
    """A Constant(Decimal) in a schema is a number in the printed documents."""
    (tmp_path / "every_field.py").write_text("from tests.support.differential import make_gateway\n")
    for fmt in ("json", "asyncapi"):
        out = subprocess.run([COMMAND, "schema", "--format", fmt, "every_field:make_gateway"], cwd=ROOT,
                             capture_output=True, text=True, timeout=60,
                             env={"PYTHONPATH": f"{tmp_path}:{ROOT}", "PATH": "/usr/bin:/bin"}, check=True).stdout
        schemas = json.loads(out)["components"]["schemas"]
        assert schemas["Case_constant"]["properties"]["value"]["const"] == 42
