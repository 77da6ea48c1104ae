"""A topic's presence declaration: the member schema, the key, the server's and the client's entries."""

from __future__ import annotations

import pytest
from marshmallow import Schema, fields

from drizzle_gateway import ActionError, Topic
from drizzle_gateway.contract.presence import MAX_KEY_LENGTH, Presence


class Member(Schema):
    id = fields.Int(required=True)
    name = fields.Str(required=True)
    nick = fields.Str(data_key="nickname")


class User:
    def __init__(self, id: int, name: str) -> None:
        self.id, self.name = id, name


def test_a_declaration_needs_an_entry_and_a_key_the_schema_dumps():
    with pytest.raises(ValueError, match="presence_of"):
        Topic("room.{name}", None, presence=Member)
    with pytest.raises(ValueError, match="need presence"):
        Topic("room.{name}", None, client_presence=True)
    with pytest.raises(ValueError, match="'uid' is not a field"):
        Topic("room.{name}", None, presence=Member, client_presence=True, presence_key="uid")
    topic = Topic("room.{name}", None, presence=Member, client_presence=True, presence_key="nickname")
    assert topic.presence is not None and topic.presence.key == "nickname"
    assert Topic("plain", None).presence is None


@pytest.mark.gen_test
async def test_the_entry_is_dumped_and_the_servers_fields_win():
    async def of(user, params):
        return User(user, f"{user}@{params['name']}") if user is not None else None

    presence = Presence(Member, of=of, client=True)
    client = presence.load_client({"id": 99, "name": "mallory", "nickname": "m"})
    assert await presence.entry(7, {"name": "lobby"}, client) == ("7", {"id": 7, "name": "7@lobby", "nickname": "m"})
    assert await presence.entry(None, {"name": "lobby"}, None) is None  # nobody: no member
    assert await presence.entry(None, {}, client) == ("99", {"id": 99, "name": "mallory", "nickname": "m"})


@pytest.mark.gen_test
async def test_what_a_client_may_not_give_is_invalid_data():
    assert Presence(Member, of=lambda user, params: None).load_client(None) is None
    with pytest.raises(ActionError) as refused:
        Presence(Member, of=lambda user, params: None).load_client({"id": 1, "name": "x"})
    assert (refused.value.code, refused.value.details) == (
        "INVALID_DATA", {"presence": ["this topic takes no presence data from clients"]})
    presence = Presence(Member, client=True, key="nickname")
    with pytest.raises(ActionError) as no_key:
        await presence.entry(None, {}, presence.load_client({"id": 1, "name": "x"}))
    assert no_key.value.details == {"presence": {"nickname": ["Missing data for required field."]}}
    with pytest.raises(ActionError) as long_key:
        await presence.entry(None, {}, presence.load_client({"id": 1, "name": "x", "nickname": "k" * 201}))
    assert long_key.value.code == "INVALID_DATA" and MAX_KEY_LENGTH == 200
    with pytest.raises(ActionError) as big:
        await presence.entry(None, {}, presence.load_client({"id": 1, "name": "x" * 100, "nickname": "k"}), 64)
    assert big.value.details["limit"] == "max_member_bytes"


@pytest.mark.gen_test
async def test_a_server_entry_without_a_key_is_a_bug_not_a_client_error():
    presence = Presence(Member, of=lambda user, params: {"name": "no id"})
    with pytest.raises(TypeError, match="presence_of returned"):
        await presence.entry("u", {}, None)


def test_member_fields_are_selected_by_their_wire_names():
    presence = Presence(Member, client=True)
    assert presence.select(["nickname"]).cut({"id": 1, "name": "n", "nickname": "k"}) == {"nickname": "k"}
    with pytest.raises(ActionError) as unknown:
        presence.select(["nick"])
    assert unknown.value.code == "INVALID_FIELDS"
