"""The recovery log's arrival rule at each of its boundaries: the pure functions fan-out, brokers and client share.

What fan-out and the brokers do with each kind of arrival (replay, gap
notices, dropped duplicates) is tested over sockets in tests/brokers/test_memory.py,
tests/brokers/redis/test_history.py and tests/test_client_history.py.
"""

from __future__ import annotations

import pytest

from drizzle_gateway.wire.history import Position
from drizzle_gateway.wire.recovery import Arrival, Gap, arrival, missing

LAST = Position("e1", 5)


@pytest.mark.parametrize(("last", "position", "kind"), [
    (None, Position("e1", 1), Arrival.FIRST),
    (None, Position("e1", 7), Arrival.FIRST),  # a first event is never a gap, whatever its offset
    (LAST, Position("e1", 1), Arrival.DUPLICATE),
    (LAST, Position("e1", 4), Arrival.DUPLICATE),
    (LAST, Position("e1", 5), Arrival.DUPLICATE),  # the last offset itself, again
    (LAST, Position("e1", 6), Arrival.NEXT),
    (LAST, Position("e1", 7), Arrival.AFTER_GAP),  # the smallest hole: offset 6
    (LAST, Position("e1", 50), Arrival.AFTER_GAP),
    (LAST, Position("e2", 6), Arrival.NEW_EPOCH),  # another epoch: even the next offset is not next
    (LAST, Position("e2", 1), Arrival.NEW_EPOCH),
    (LAST, Position("e2", 5), Arrival.NEW_EPOCH),
    (Position("e1", 0), Position("e1", 1), Arrival.NEXT),  # a channel without events yet
    (Position("e1", 0), Position("e1", 0), Arrival.DUPLICATE),
])
def test_arrival(last, position, kind):
    assert arrival(last, position) is kind


@pytest.mark.parametrize(("last", "position", "gap"), [
    (LAST, Position("e1", 7), Gap("e1", 6, 6)),
    (LAST, Position("e1", 9), Gap("e1", 6, 8)),
    (Position("e1", 0), Position("e1", 3), Gap("e1", 1, 2)),
    (LAST, Position("e1", 6), None),
    (LAST, Position("e1", 5), None),
    (LAST, Position("e1", 2), None),
    (LAST, Position("e2", 9), None),  # another epoch: nothing of it is known to be missing
    (None, Position("e1", 9), None),
])
def test_missing_is_exactly_the_offsets_between(last, position, gap):
    assert missing(last, position) == gap


def test_a_gap_holds_at_least_one_offset_and_ends_at_its_position():
    assert Gap("e1", 3, 3).position == Position("e1", 3)
    assert Gap("e1", 3, 9).position == Position("e1", 9)
    with pytest.raises(ValueError) as empty:
        Gap("e1", 4, 3)
    assert str(empty.value) == "an empty gap (4-3)"

