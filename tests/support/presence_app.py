"""Gateways with presence, as ``MODULE:ATTR`` targets for ``drizzle-gateway serve`` subprocesses and in-process tests.

``room.{name}`` lists its members by ``id``: an authenticated connection's
entry has its user as ``id`` (the server's part wins), and the client may
give its own entry (an anonymous one must give the ``id``).
"""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, fields, validate

from drizzle_gateway import Gateway, Limits, Topic


class Note(Schema):
    text = fields.Str(required=True)


class Member(Schema):
    id = fields.Str(required=True, validate=validate.Length(min=1, max=60))
    name = fields.Str(validate=validate.Length(max=60))
    status = fields.Str(validate=validate.OneOf(["here", "away"]))


def who(user: Any, params: dict[str, str]) -> dict[str, str] | None:
    """The server's part of a member's entry: its id, when the connection has a user."""
    return {"id": user} if user else None


def make_topics() -> list[Topic]:
    """``room.{name}``: members by id, the client may add its own entry; ``plain``: no presence."""
    return [Topic("room.{name}", Note, client_publish=True, presence=Member, presence_of=who, client_presence=True),
            Topic("plain", Note)]


def make_presence_gateway(**limits: Any) -> Gateway:
    """A gateway on the `make_topics` topics, without a rate limit; ``limits`` are more `Limits` fields."""
    return Gateway(topics=make_topics(), limits=Limits(rate=None, **limits), title="presence")


def make_small_presence_gateway() -> Gateway:
    """`make_presence_gateway` with room for 3 members a channel and 5 joins and leaves a second (bursts of 5)."""
    return make_presence_gateway(max_members=3, presence_rate=5.0, presence_burst=5)
