"""Presence's values and frames."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from drizzle_gateway.testing import TestClient
from drizzle_gateway.wire.dialect import Dialect
from drizzle_gateway.wire.presence import JOIN, LEAVE, STALE, Change, change_of
from tests.support.presence_app import make_presence_gateway


def test_a_change_is_a_join_or_a_leave():
    assert Change(JOIN, "ada", {"id": "ada"}).kind == "join"
    assert Change(LEAVE, "ada", {}).kind == "leave"
    with pytest.raises(ValueError, match="join"):
        Change(STALE, "ada", {})


def test_change_of_reads_what_redis_publishes_and_nothing_else():
    assert change_of({"e": "join", "k": "ada", "d": {"id": "ada"}}) == Change(JOIN, "ada", {"id": "ada"})
    for wrong in ([], {"e": "stale", "k": "a", "d": {}}, {"e": "join", "k": 1, "d": {}},
                  {"e": "leave", "k": "a", "d": []}, {"e": "join", "k": "a"}):
        assert change_of(wrong) is None


def test_the_frames_of_a_change_and_of_a_stale_notice():
    dialect = Dialect()
    assert json.loads(dialect.presence("chat.lobby", JOIN, "ada", {"name": "Ada"})) == {
        "topic": "chat.lobby", "presence": "join", "key": "ada", "member": {"name": "Ada"}}
    assert json.loads(dialect.presence_stale("chat.lobby")) == {"topic": "chat.lobby", "presence": "stale"}


SCHEMAS = Path(__file__).resolve().parent.parent.parent / "schemas"


def presence_schema() -> Draft202012Validator:
    schema = json.loads((SCHEMAS / "presence.schema.json").read_text())
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def test_the_example_presence_frames_match_the_schema():
    examples = json.loads((SCHEMAS / "examples" / "presence.json").read_text())
    check = presence_schema()
    assert all(check.is_valid(frame) for frame in examples["valid"])
    assert not any(check.is_valid(frame) for frame in examples["invalid"])


@pytest.mark.gen_test
async def test_real_presence_frames_match_the_schema():
    check = presence_schema()
    gateway = make_presence_gateway(presence_rate=1.0, presence_burst=2)
    frames: list[dict] = []

    def recording(text: str) -> dict:
        frames.append(json.loads(text))  # every frame, as sent
        return frames[-1]

    async with TestClient(gateway, loads=recording) as watcher:
        await watcher.subscribe("room.x", presence={"id": "me"}, join_leave=True, member_fields=["id"])
        async with TestClient(gateway) as other:
            await other.subscribe("room.x", presence={"id": "other", "name": "Other"})
        async with asyncio.timeout(5):
            while not any(frame.get("presence") == "stale" for frame in frames):
                await watcher.ping()
                await asyncio.sleep(0.05)
    sent = [frame for frame in frames if "presence" in frame and "request_id" not in frame]
    assert [frame["presence"] for frame in sent] == ["join", "join", "stale"]
    for frame in sent:
        check.validate(frame)
