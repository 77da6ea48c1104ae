"""GraphQL-style field selection on replies and on subscriptions."""

from __future__ import annotations

import pytest
from marshmallow import Schema, fields

from drizzle_gateway.client import RemoteError
from drizzle_gateway.schema.selection import Selector, project
from drizzle_gateway.wire.errors import ActionError

MESSAGE = {"author": {"name": "ada", "email": "ada@example.com"}, "text": "hello", "seq": 3}


@pytest.mark.gen_test
async def test_fields_select_reply_parts_including_nested(test_client):
    client = await test_client()
    created = await client.call("todos", "create", {"title": "milk"}, fields=["id", "owner.name"])
    assert created == {"id": 1, "owner": {"name": "ada"}}
    assert await client.call("todos", "list", fields=["title"]) == [{"title": "milk"}]


@pytest.mark.gen_test
async def test_unknown_fields_are_listed(test_client):
    client = await test_client()
    with pytest.raises(RemoteError) as caught:
        await client.call("todos", "create", {"title": "milk"}, fields=["id", "colour", "owner.age", "title.x"])
    assert caught.value.code == "INVALID_FIELDS"
    assert caught.value.details == {"fields": ["colour", "owner.age", "title.x"]}
    # nothing ran: the input was fine, but the request was refused before the action
    assert await client.call("todos", "list") == []


@pytest.mark.gen_test
async def test_fields_on_an_action_without_output_schema(test_client):
    client = await test_client()
    with pytest.raises(RemoteError) as caught:
        await client.call("lab", "plain", fields=["kind"])
    assert (caught.value.code, caught.value.details) == ("INVALID_FIELDS", {"fields": ["kind"]})


@pytest.mark.gen_test
async def test_fields_select_event_parts(gateway, test_client):
    whole, partial = await test_client(), await test_client()
    await whole.subscribe("alerts")
    await partial.subscribe("alerts", fields=["author.name", "seq"])
    await gateway.publish("alerts", MESSAGE)
    assert (await whole.next_event(2)).data == MESSAGE
    assert (await partial.next_event(2)).data == {"author": {"name": "ada"}, "seq": 3}


@pytest.mark.gen_test
async def test_subscribe_with_unknown_fields_is_refused(test_client):
    client = await test_client()
    with pytest.raises(RemoteError) as caught:
        await client.subscribe("alerts", fields=["colour"])
    assert (caught.value.code, caught.value.details) == ("INVALID_FIELDS", {"fields": ["colour"]})


class Keyed(Schema):
    inner_name = fields.Str(data_key="innerName")
    items = fields.List(fields.Nested(lambda: Keyed(only=("inner_name",))))


def test_selector_caches_selections_by_wire_name():
    selector = Selector(Keyed)
    first = selector.select(["innerName", "items.innerName"])
    assert selector.select(["items.innerName", "innerName"]) is first
    data = {"innerName": "a", "items": [{"innerName": "b"}], "other": 1}
    assert project(data, first.tree) == {"innerName": "a", "items": [{"innerName": "b"}]}
    assert first.schema.dump({"inner_name": "a", "items": [{"inner_name": "b"}]}) == {
        "innerName": "a", "items": [{"innerName": "b"}]}
    with pytest.raises(ActionError) as caught:  # attribute names are not wire names
        selector.select(["inner_name"])
    assert caught.value.details == {"fields": ["inner_name"]}


def test_a_self_referencing_path_is_honoured_deep_down_and_bounded():
    from tests.support.realworld import Node

    selector = Selector(Node)
    deep = ".".join(["single"] * 40 + ["id"])
    obj: dict = {"id": 41}
    for i in range(40, 0, -1):
        obj = {"id": i, "single": obj}
    data = selector.select([deep]).schema.dump(obj)
    for _ in range(40):
        data = data["single"]
    assert data == {"id": 41}
    too_deep = ".".join(["single"] * 64 + ["id"])
    with pytest.raises(ActionError) as caught:
        selector.select([too_deep])
    assert caught.value.details == {"fields": [too_deep]}


class Child(Schema):
    pk = fields.Int()
    name = fields.Str()


class Parent(Schema):
    children = fields.Pluck(Child, "pk", many=True)
    child = fields.Pluck(Child, "pk")
    listed = fields.List(fields.Pluck(Child, "pk"))
    n = fields.Int()


@pytest.mark.parametrize("only", [("children.pk",), ("child.pk", "n"), ("listed.pk",), ("children", "children.pk")])
def test_a_plucked_field_is_selected_by_its_name_as_in_marshmallows_only(only):
    obj = {"children": [{"pk": 1, "name": "a"}, {"pk": 2}], "child": {"pk": 3}, "listed": [{"pk": 4}], "n": 5}
    selection = Selector(Parent).select(only)
    expected = Parent(only=only).dump(obj)
    assert selection.schema.dump(obj) == expected
    assert selection.cut(Parent().dump(obj)) == expected


def test_a_plucked_field_has_no_other_sub_fields():
    with pytest.raises(ActionError) as caught:
        Selector(Parent).select(["children.name", "child.pk.x", "listed.pk", "n.x"])
    assert caught.value.details == {"fields": ["child.pk.x", "children.name", "n.x"]}
