"""Presence's values and frames."""

from __future__ import annotations

import json

import pytest

from drizzle_gateway.wire.dialect import Dialect
from drizzle_gateway.wire.presence import JOIN, LEAVE, STALE, Change, change_of


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
