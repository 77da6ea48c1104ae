"""Presence's values: who is on a channel, and the join and leave of one member.

A *member* of a channel is identified by its ``key`` (a string: the value
of the topic's presence key field, such as a user's id). However many
connections of it subscribe, on however many processes, it is one member:
it joins when its first connection subscribes and leaves when its last
one goes. Its ``data`` is the dumped presence entry its first connection gave.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

JOIN = "join"
"""The ``presence`` of an event frame announcing a member's first connection."""

LEAVE = "leave"
"""The ``presence`` of an event frame announcing that a member's last connection went."""

STALE = "stale"
"""The ``presence`` of a notice saying that join and leave events were not sent (over the rate): list again."""

KINDS = frozenset({JOIN, LEAVE})
"""What a member's change can be."""


@dataclass(frozen=True)
class Member:
    """One member of a channel: its ``key``, its dumped presence ``data``, and how many ``connections`` it has."""

    key: str
    data: dict[str, Any]
    connections: int = 1


@dataclass(frozen=True)
class Change:
    """A member joined or left a channel (``kind`` is `JOIN` or `LEAVE`; ``data`` its dumped presence)."""

    kind: str
    key: str
    data: dict[str, Any]

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"a presence change is {JOIN!r} or {LEAVE!r}, not {self.kind!r}")


def change_of(value: Any) -> Change | None:
    """The `Change` a decoded ``{"e": kind, "k": key, "d": data}`` announces, or None when it is not one."""
    if not isinstance(value, dict):
        return None
    kind, key, data = value.get("e"), value.get("k"), value.get("d")
    if kind not in KINDS or not isinstance(key, str) or not isinstance(data, dict):
        return None
    return Change(kind, key, data)
