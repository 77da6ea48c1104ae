"""Test gateways as ``MODULE:ATTR`` targets for subprocesses.

``drizzle-gateway serve tests.scaleout_app:make_gateway --redis URL``
"""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from drizzle_gateway import Gateway, Topic
from examples.todo.app import make_gateway as make_todo_gateway
from tests.resources import TEST_RESOURCES, TEST_TOPICS, Author


def make_gateway() -> Gateway:
    """The same gateway the in-process tests' ``gateway`` fixture serves."""
    gateway = make_todo_gateway()
    for resource in TEST_RESOURCES:
        gateway.add_resource(resource)
    for topic in TEST_TOPICS:
        gateway.add_topic(topic)
    return gateway


class ShortMessage(Schema):
    """A stricter chat message than tests/resources.py's: at most 3 characters of text."""

    author = fields.Nested(Author, required=True)
    text = fields.Str(required=True, validate=validate.Length(max=3))
    seq = fields.Int()


def make_strict_gateway() -> Gateway:
    """A gateway whose ``chat.{room}`` is stricter, to show receivers do not validate again."""
    gateway = make_todo_gateway()
    gateway.add_topic(Topic("chat.{room}", ShortMessage, client_publish=True))
    return gateway
