"""schemas/: the protocol's machine-readable contract, checked against real frames."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from drizzle_gateway import Topic
from tests.support.resources import Message
from tests.support.serve_app import make_gateway as make_test_gateway

SCHEMAS = Path(__file__).resolve().parent.parent.parent / "schemas"
KINDS = ("request", "reply", "error", "event")
REPLY_DATA = ("subscribe-reply", "history-reply")
STREAM = ("stream-item", "stream-end")


@pytest.fixture
def gateway():
    """The test gateway plus a topic with history (``feed.{room}``)."""
    gw = make_test_gateway()
    gw.add_topic(Topic("feed.{room}", Message, history=10))
    return gw


def validator(kind: str) -> Draft202012Validator:
    schema = json.loads((SCHEMAS / f"{kind}.schema.json").read_text())
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


@pytest.mark.parametrize("kind", KINDS + REPLY_DATA + STREAM)
def test_example_frames_match_their_schema(kind):
    examples = json.loads((SCHEMAS / "examples" / f"{kind}.json").read_text())
    check = validator(kind)
    for frame in examples["valid"]:
        assert check.is_valid(frame), frame
    for frame in examples["invalid"]:
        assert not check.is_valid(frame), frame


@pytest.mark.gen_test
async def test_real_frames_match_the_schemas(gateway, raw):
    request_schema, reply, error, event = (validator(kind) for kind in KINDS)
    examples = json.loads((SCHEMAS / "examples" / "request.json").read_text())
    sock = await raw()
    for frame in examples["valid"]:
        request_schema.validate(frame)
        answer = await sock.ask(frame)
        while "topic" in answer and "request_id" not in answer:
            event.validate(answer)
            answer = await sock.recv()
        (error if "code" in answer else reply).validate(answer)
        assert answer["request_id"] == frame["request_id"]
    for frame in examples["invalid"]:
        assert not request_schema.is_valid(frame)
        answer = await sock.ask(frame)
        error.validate(answer)
        assert answer["code"] == "VALIDATION_ERROR"
    await sock.ask({"request_id": "s", "action": "__subscribe__", "data": {"topic": "chat.lobby"}})
    await gateway.publish("chat.lobby", {"author": {"name": "ada"}, "text": "hi"})
    event.validate(await sock.recv())


@pytest.mark.gen_test
async def test_real_history_frames_match_the_schemas(gateway, raw):
    reply, event = validator("reply"), validator("event")
    subscribed, history = validator("subscribe-reply"), validator("history-reply")
    sock = await raw()
    answer = await sock.ask({"request_id": 1, "action": "__subscribe__", "data": {"topic": "feed.lobby"}})
    reply.validate(answer)
    subscribed.validate(answer["data"])
    position = {"epoch": answer["data"]["epoch"], "offset": 0}
    await gateway.publish("feed.lobby", {"author": {"name": "ada"}, "text": "hi"})
    live = await sock.recv()
    event.validate(live)
    assert live["offset"] == 1
    again = await raw()
    replayed = await again.ask({"request_id": 2, "action": "__subscribe__",
                                "data": {"topic": "feed.lobby", "since": position, "fields": ["text"]}})
    event.validate(replayed)
    assert replayed == {"topic": "feed.lobby", "data": {"text": "hi"}, "offset": 1}
    answer = await again.recv()
    subscribed.validate(answer["data"])
    assert answer["data"]["recovered"] is True
    answer = await again.ask({"request_id": 3, "action": "__history__",
                              "data": {"topic": "feed.lobby", "since": position, "limit": 5}})
    reply.validate(answer)
    history.validate(answer["data"])
    assert [e["offset"] for e in answer["data"]["events"]] == [1]


@pytest.mark.gen_test
async def test_real_stream_frames_match_the_schemas_and_no_other(raw):
    reply, item, end = validator("reply"), validator("stream-item"), validator("stream-end")
    sock = await raw()
    await sock.send({"request_id": 1, "resource": "todos", "action": "create", "data": {"title": "milk"}})
    reply.validate(await sock.recv())
    await sock.send({"request_id": 2, "resource": "todos", "action": "search", "data": {"q": "mil"}})
    first, last = await sock.recv(), await sock.recv()
    item.validate(first)
    end.validate(last)
    assert not reply.is_valid(first) and not reply.is_valid(last) and not item.is_valid(last)
