"""The recovery log: per channel, the position reached, and what each numbered event's arrival means.

Fan-out, the Redis broker and the Python client each keep a `RecoveryLog`
and judge each arrival with it (the rule is `arrival`): the next offset,
one delivered already (a duplicate, dropped), one after a hole (the hole
is a `Gap`: recovered if it can be, announced if not, never skipped
silently), or the first of another epoch (the history was lost). The
log's `Verdict` says what the caller must do.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Generic, TypeVar

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


class Step(enum.Enum):
    """What the keeper of a log does with one arrival."""

    DROP = "drop"  # delivered already, or a loss in an epoch nothing was delivered of here: nothing to do
    DELIVER = "deliver"  # hand it on, after announcing `Verdict.gap` if there is one; its position is reached
    FILL = "fill"  # read `Verdict.gap` from the history first; the position stays where it was until then


@dataclass(frozen=True)
class Verdict:
    """How one arrival was judged, and what the caller must do with it.

    ``gap`` holds the offsets that come before it and were not delivered
    (for a loss: those of it not delivered yet); ``epoch`` is set on the
    first event of an epoch (the first reached, or a new one: the history
    was lost), for readers to be told.
    """

    arrival: Arrival
    step: Step
    gap: Gap | None = None
    epoch: str | None = None


R = TypeVar("R")
"""A reader with a floor: anything usable as a dict key (fan-out: its subscribers)."""


class RecoveryLog(Generic[R]):
    """Per channel: the position reached, and the floor of each reader ``R`` still catching up.

    `arrive` judges each numbered event (or each announced loss) against
    the position reached and moves it on when the event is to be
    delivered. A *floor* is for a reader that is replayed what it missed
    while live events go on: live offsets up to its floor are not sent to
    it (its replay sends them), all of them while the floor is infinite.
    """

    def __init__(self) -> None:
        self._reached: dict[str, Position] = {}
        self._floors: dict[str, dict[R, float]] = {}

    def position(self, channel: str) -> Position | None:
        """The last position reached on ``channel``, or None."""
        return self._reached.get(channel)

    def positions(self) -> dict[str, Position]:
        """Every channel's position reached (a copy)."""
        return dict(self._reached)

    def judge(self, channel: str, position: Position, *, lost: bool = False, fill: bool = False) -> Verdict:
        """What an event at ``position`` (``lost``: the announced loss of the offsets up to it) calls for.

        ``fill``: the caller reads the offsets an event skipped from the
        history (`Step.FILL`) rather than announcing them (`Step.DELIVER`).
        Nothing is recorded (see `arrive`).
        """
        last = self._reached.get(channel)
        kind = arrival(last, position)
        if kind is Arrival.DUPLICATE or (lost and kind in (Arrival.FIRST, Arrival.NEW_EPOCH)):
            return Verdict(kind, Step.DROP)
        if lost:
            assert last is not None
            return Verdict(kind, Step.DELIVER, Gap(position.epoch, last.offset + 1, position.offset))
        gap = missing(last, position)
        if gap is not None:
            return Verdict(kind, Step.FILL if fill else Step.DELIVER, gap)
        return Verdict(kind, Step.DELIVER, epoch=None if kind is Arrival.NEXT else position.epoch)

    def arrive(self, channel: str, position: Position, *, lost: bool = False, fill: bool = False) -> Verdict:
        """`judge` the arrival, and reach ``position`` when it is to be delivered (`Step.DELIVER`)."""
        verdict = self.judge(channel, position, lost=lost, fill=fill)
        if verdict.step is Step.DELIVER:
            self._reached[channel] = position
        return verdict

    def reach(self, channel: str, position: Position) -> None:
        """Stand at ``position`` on ``channel``, wherever it stood (a position a server gave, say)."""
        self._reached[channel] = position

    def start(self, channel: str, position: Position) -> None:
        """Stand at ``position`` unless ``channel`` already stands somewhere in its epoch."""
        if arrival(self._reached.get(channel), position) in (Arrival.FIRST, Arrival.NEW_EPOCH):
            self._reached[channel] = position

    def forget(self, channel: str) -> None:
        """Drop ``channel``: its position and its floors."""
        self._reached.pop(channel, None)
        self._floors.pop(channel, None)

    def hold(self, channel: str, reader: R, floor: float = math.inf) -> None:
        """Withhold from ``reader`` the live offsets of ``channel`` up to ``floor`` (all of them by default)."""
        self._floors.setdefault(channel, {})[reader] = floor

    def release(self, channel: str, reader: R) -> None:
        """Withhold nothing more from ``reader`` on ``channel``."""
        floors = self._floors.get(channel)
        if floors:
            floors.pop(reader, None)

    def floors(self, channel: str) -> Mapping[R, float]:
        """The floor of each reader of ``channel`` that has one."""
        return self._floors.get(channel) or {}

    def caught_up(self, channel: str, offset: int) -> None:
        """An event at ``offset`` was handed on: release the readers whose floor it reached."""
        floors = self._floors.get(channel)
        if floors:
            for reader in [reader for reader, floor in floors.items() if floor <= offset]:
                del floors[reader]
