"""The recovery log's one rule: what a numbered event's arrival means, given the last position reached.

Fan-out, the Redis broker and the Python client all keep, per channel, the
`Position` they reached and judge each arrival with `arrival`: the next
offset, one delivered already (a duplicate, dropped), one after a hole
(the hole is a `Gap`: recovered if it can be, announced if not, never
skipped silently), or the first of another epoch (the history was lost).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from .history import Position


class Arrival(enum.Enum):
    """How an event at some position relates to the last position reached."""

    FIRST = "first"  # no position reached yet
    NEXT = "next"  # offset last + 1 of the same epoch
    DUPLICATE = "duplicate"  # at or before the last offset of the same epoch
    AFTER_GAP = "after gap"  # beyond last + 1 of the same epoch: the offsets between are missing
    NEW_EPOCH = "new epoch"  # another epoch: the channel's history was lost


@dataclass(frozen=True)
class Gap:
    """Offsets ``first`` to ``last`` (inclusive) of ``epoch`` that cannot be delivered."""

    epoch: str
    first: int
    last: int

    def __post_init__(self) -> None:
        if self.last < self.first:
            raise ValueError(f"an empty gap ({self.first}-{self.last})")

    @property
    def position(self) -> Position:
        """Where a reader stands once the gap is announced: its last offset."""
        return Position(self.epoch, self.last)


def arrival(last: Position | None, position: Position) -> Arrival:
    """What an event at ``position`` is to a reader that reached ``last``."""
    if last is None:
        return Arrival.FIRST
    if last.epoch != position.epoch:
        return Arrival.NEW_EPOCH
    if position.offset <= last.offset:
        return Arrival.DUPLICATE
    if position.offset == last.offset + 1:
        return Arrival.NEXT
    return Arrival.AFTER_GAP


def missing(last: Position | None, position: Position) -> Gap | None:
    """The offsets between ``last`` and an event at ``position`` of the same epoch, or None if there are none."""
    if arrival(last, position) is not Arrival.AFTER_GAP:
        return None
    assert last is not None
    return Gap(position.epoch, last.offset + 1, position.offset - 1)
