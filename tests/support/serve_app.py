"""Test gateways as ``MODULE:ATTR`` targets for ``drizzle-gateway serve`` subprocesses.

``drizzle-gateway serve tests.support.serve_app:make_gateway [--redis URL]``
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from marshmallow import Schema, fields, validate

from drizzle_gateway import Gateway, Limits, Resource, Topic, action
from examples.todo.app import make_gateway as make_todo_gateway
from tests.support.gateways import rebuilt
from tests.support.resources import TEST_RESOURCES, TEST_TOPICS, Author, Message


def make_gateway(**options: Any) -> Gateway:
    """The todo example's gateway plus the test resources and topics (the ``gateway`` fixture).

    ``options`` are keyword arguments of `Gateway` (``limits=...``, ``authenticate=...``).
    """
    return rebuilt(make_todo_gateway(), resources=TEST_RESOURCES, topics=TEST_TOPICS, **options)


UNTHROTTLED = Limits(rate=None, ping_interval=5.0, ping_timeout=5.0)
"""No per-connection rate limit; heartbeat pings every 5 s, so the bulk tests' readers meet pings too."""


def make_unthrottled_gateway() -> Gateway:
    """`make_gateway` with the `UNTHROTTLED` limits, for tests that publish in bulk."""
    return make_gateway(limits=UNTHROTTLED)


class ShortMessage(Schema):
    """A stricter chat message than tests/support/resources.py's: at most 3 characters of text."""

    author = fields.Nested(Author, required=True)
    text = fields.Str(required=True, validate=validate.Length(max=3))
    seq = fields.Int()


def make_strict_gateway() -> Gateway:
    """A gateway whose ``chat.{room}`` is stricter, to show receivers do not validate again."""
    gateway = make_todo_gateway()
    gateway.add_topic(Topic("chat.{room}", ShortMessage, client_publish=True))
    return gateway


class Bulk(Schema):
    """A numbered message with a body, for the flow-control tests."""

    seq = fields.Int(required=True)
    body = fields.Str(required=True)


FLOW_LIMITS = Limits(send_queue_bytes=256 * 1024, send_timeout=1.0)
"""The flow gateway's limits: a small send queue (256 KiB) and a 1 s send timeout."""


def make_flow_gateway(**options: Any) -> Gateway:
    """A ``bulk`` topic clients may publish to; the `FLOW_LIMITS` unless ``options`` (of `Gateway`) say otherwise."""
    return Gateway(topics=[Topic("bulk", Bulk, client_publish=True)], **{"limits": FLOW_LIMITS, **options})


def make_history_gateway() -> Gateway:
    """`make_unthrottled_gateway` plus topics with history clients may publish to: ``feed.{room}`` (1,000 events)
    and ``short.{room}`` (100 events)."""
    gateway = make_unthrottled_gateway()
    gateway.add_topic(Topic("feed.{room}", Message, history=1000, client_publish=True))
    gateway.add_topic(Topic("short.{room}", Message, history=100, client_publish=True))
    return gateway


class Record(Schema):
    """A numbered request: wait ``seconds``, then publish ``seq``."""

    seq = fields.Int(required=True)
    seconds = fields.Float(required=True)


class Whoami(Resource):
    """Which process answered, and a request whose every run leaves a trace (for the draining tests)."""

    name = "whoami"

    @action()
    def pid(self, data: Any) -> dict[str, int]:
        """The answering process's id."""
        return {"pid": os.getpid()}

    @action(input=Record)
    async def record(self, data: dict[str, Any]) -> dict[str, int]:
        """Wait ``seconds``, publish ``seq`` on ``relay.ledger`` (each run once), answer with ``seq``."""
        await asyncio.sleep(data["seconds"])
        await self.gateway.publish("relay.ledger", {"author": {"name": "record"}, "text": "run", "seq": data["seq"]})
        return {"seq": data["seq"]}


RELAY_HISTORY = 5000
"""Events ``relay.{room}`` keeps: a rolling restart's reconnects stay well within it."""


def make_worker_gateway() -> Gateway:
    """`make_unthrottled_gateway` plus ``whoami`` and ``relay.{room}``, a client-published topic with history.

    ``relay.ledger`` holds one event per run of ``whoami.record``.
    """
    gateway = make_unthrottled_gateway()
    gateway.add_resource(Whoami)
    gateway.add_topic(Topic("relay.{room}", Message, history=RELAY_HISTORY, client_publish=True))
    return gateway
