"""The trimmed ``__schema__``: `visible_schema` keeps what a user may use, `builtins_only` the built-in actions.

Permissions are asked "may this user use it at all?"; a hook that refuses
or raises hides the entry, and components nothing references any more go
too. How connections see these documents is tested in tests/runtime/test_auth.py.
"""

from __future__ import annotations

import pytest
from marshmallow import Schema, fields

from drizzle_gateway import Gateway, Resource, Topic, action
from drizzle_gateway.contract.visibility import builtins_only, permits, visible_schema


async def visible_to(gateway, user):
    """What ``user`` sees of ``gateway``'s ``__schema__``."""
    return await visible_schema(gateway.schema(), gateway.resources, gateway.topics, user)


class Part(Schema):
    name = fields.Str()


class Secret(Schema):
    text = fields.Str(required=True)
    part = fields.Nested(Part)


class Public(Schema):
    text = fields.Str(required=True)


def is_admin(user, params) -> bool:
    return user == "admin"


def broken(user, params) -> bool:
    raise RuntimeError("the permission store is down")


asked: list[dict] = []


def recording(user, params) -> bool:
    asked.append(params)
    return True


class Vault(Resource):
    name = "vault"

    @action(Secret, allow=is_admin)
    def store(self, data):
        """Admins only."""

    @action(Public, allow=recording)
    def count(self, data):
        """Anyone."""

    @action(allow=broken)
    def fragile(self, data):
        """Nobody: its permission raises."""


class Admin(Resource):
    name = "admin"

    @action(Secret, allow=is_admin)
    def wipe(self, data):
        """Admins only."""


staff = Topic("staff", Secret, can_subscribe=is_admin)
lobby = Topic("lobby.{room}", Public, client_publish=True, can_subscribe=is_admin, can_publish=lambda u, p: True)
alerts = Topic("alerts", Public, client_subscribe=False)  # clients can neither subscribe nor publish


@pytest.fixture
def gateway() -> Gateway:
    return Gateway([Vault, Admin], [staff, lobby, alerts])


def names(document: dict) -> tuple[set[str], set[str], set[str]]:
    """The document's actions (resource.action), topics and component names."""
    actions = {f"{entry['name']}.{a['name']}" for entry in document["resources"] for a in entry["actions"]}
    return actions, {t["name"] for t in document["topics"]}, set(document["components"]["schemas"])


@pytest.mark.gen_test
async def test_an_admin_sees_everything_its_permissions_allow(gateway):
    actions, topics, components = names(await visible_to(gateway, "admin"))
    assert actions == {"vault.store", "vault.count", "admin.wipe"}  # fragile's permission raises: hidden
    assert topics == {"staff", "lobby.{room}", "alerts"}
    assert {"Secret", "Part", "Public"} <= components


@pytest.mark.gen_test
async def test_a_user_sees_neither_refused_actions_nor_their_components(gateway):
    asked.clear()
    document = await visible_to(gateway, "bob")
    actions, topics, components = names(document)
    assert actions == {"vault.count"}
    assert [entry["name"] for entry in document["resources"]] == ["vault"]  # a resource left without actions goes
    assert topics == {"lobby.{room}", "alerts"}  # publishing is allowed; alerts has no client way to refuse
    assert "Secret" not in components and "Part" not in components  # referenced only by what bob may not use
    assert "Public" in components
    assert asked == [{"resource": "vault", "action": "count", "data": None}]


@pytest.mark.gen_test
async def test_the_gateways_own_document_is_left_as_it_was(gateway):
    whole = names(gateway.schema())
    await visible_to(gateway, "bob")
    assert names(gateway.schema()) == whole


def test_builtins_only_keeps_the_builtins_and_their_components(gateway):
    document = builtins_only(gateway.schema())
    assert (document["resources"], document["topics"]) == ([], [])
    assert document["builtins"] == gateway.schema()["builtins"]
    assert "AuthInput" in document["components"]["schemas"]
    assert not {"Secret", "Part", "Public"} & set(document["components"]["schemas"])


@pytest.mark.gen_test
async def test_permits_allows_without_a_permission_and_refuses_when_it_raises():
    assert await permits(None, "anyone", {}) is True
    assert await permits(is_admin, "admin", {}) is True
    assert await permits(is_admin, "bob", {}) is False
    assert await permits(broken, "admin", {}) is False
