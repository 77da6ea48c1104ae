"""``__schema__``: the whole contract as JSON Schema, produced by apispec."""

from __future__ import annotations

import pytest
from jsonschema import Draft202012Validator


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
    assert set(actions) == {"create", "get", "list", "update", "watch"}
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
        "__history__"}


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
