"""The recovery log at each of its boundaries: the arrival rule and the `RecoveryLog` fan-out, brokers and client share.

What fan-out and the brokers do with each kind of arrival (replay, gap
notices, dropped duplicates) is tested over sockets in tests/brokers/test_memory.py,
tests/brokers/redis/test_history.py and tests/test_client_history.py.
"""

from __future__ import annotations

import pytest

from drizzle_gateway.wire.history import Position
from drizzle_gateway.wire.recovery import Arrival, Gap, RecoveryLog, Step, Verdict, arrival, missing

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



def log_at(position: Position | None, channel: str = "c") -> RecoveryLog[str]:
    log: RecoveryLog[str] = RecoveryLog()
    if position is not None:
        log.reach(channel, position)
    return log


@pytest.mark.parametrize(("last", "position", "verdict"), [
    (None, Position("e1", 7), Verdict(Arrival.FIRST, Step.DELIVER, epoch="e1")),
    (LAST, Position("e1", 6), Verdict(Arrival.NEXT, Step.DELIVER)),
    (LAST, Position("e1", 5), Verdict(Arrival.DUPLICATE, Step.DROP)),
    (LAST, Position("e1", 9), Verdict(Arrival.AFTER_GAP, Step.DELIVER, Gap("e1", 6, 8))),
    (LAST, Position("e2", 1), Verdict(Arrival.NEW_EPOCH, Step.DELIVER, epoch="e2")),
])
def test_an_event_is_delivered_with_what_to_announce_before_it_unless_delivered_already(last, position, verdict):
    log = log_at(last)
    assert log.arrive("c", position) == verdict
    assert log.position("c") == (last if verdict.step is Step.DROP else position)


def test_a_reader_that_fills_holes_keeps_its_position_until_the_hole_is_read():
    log = log_at(LAST)
    assert log.arrive("c", Position("e1", 9), fill=True) == Verdict(Arrival.AFTER_GAP, Step.FILL, Gap("e1", 6, 8))
    assert log.position("c") == LAST
    assert log.arrive("c", Position("e1", 6), fill=True) == Verdict(Arrival.NEXT, Step.DELIVER)
    assert log.arrive("new", Position("e1", 9), fill=True).step is Step.DELIVER  # a first event is no hole


@pytest.mark.parametrize(("last", "position", "verdict"), [
    (LAST, Position("e1", 6), Verdict(Arrival.NEXT, Step.DELIVER, Gap("e1", 6, 6))),
    (LAST, Position("e1", 9), Verdict(Arrival.AFTER_GAP, Step.DELIVER, Gap("e1", 6, 9))),
    (LAST, Position("e1", 5), Verdict(Arrival.DUPLICATE, Step.DROP)),  # announced or delivered already
    (LAST, Position("e2", 9), Verdict(Arrival.NEW_EPOCH, Step.DROP)),  # lost before anything known of e2
    (None, Position("e1", 9), Verdict(Arrival.FIRST, Step.DROP)),
])
def test_a_loss_announces_every_offset_after_the_position_reached(last, position, verdict):
    log = log_at(last)
    assert log.arrive("c", position, lost=True, fill=True) == verdict
    assert log.position("c") == (last if verdict.step is Step.DROP else position)


def test_judging_records_nothing_and_channels_are_kept_apart():
    log = log_at(LAST)
    assert log.judge("c", Position("e1", 6)) == Verdict(Arrival.NEXT, Step.DELIVER)  # an event, not a loss
    assert log.judge("c", Position("e1", 9)) == Verdict(Arrival.AFTER_GAP, Step.DELIVER, Gap("e1", 6, 8))  # announced
    assert log.position("c") == LAST
    assert log.arrive("other", Position("e1", 3)).arrival is Arrival.FIRST
    assert log.positions() == {"c": LAST, "other": Position("e1", 3)}
    log.positions().clear()  # a copy
    log.forget("other")
    assert log.positions() == {"c": LAST} and log.position("other") is None


@pytest.mark.parametrize(("position", "moves"), [
    (Position("e1", 9), False),  # its epoch has a position already: the one reached stays
    (Position("e1", 2), False),
    (Position("e2", 1), True),
])
def test_start_takes_a_position_only_in_an_epoch_not_stood_in(position, moves):
    log = log_at(LAST)
    log.start("c", position)
    assert log.position("c") == (position if moves else LAST)
    log.start("new", position)
    assert log.position("new") == position


def test_a_reader_is_held_until_its_floor_is_caught_up_with():
    log: RecoveryLog[str] = RecoveryLog()
    assert log.floors("c") == {}
    log.hold("c", "replaying")
    log.hold("c", "behind", 7)
    log.caught_up("c", 6)
    assert log.floors("c") == {"replaying": float("inf"), "behind": 7}
    log.caught_up("c", 7)  # the floor itself reached
    assert log.floors("c") == {"replaying": float("inf")}
    log.release("c", "never held")
    log.release("c", "replaying")
    log.release("none", "replaying")
    assert log.floors("c") == {}
    log.hold("c", "behind", 3)
    log.forget("c")
    assert log.floors("c") == {}
