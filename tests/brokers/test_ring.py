"""`Ring`: the memory broker's bounded history of one channel: offsets without gaps, losses, weight, expiry."""

from __future__ import annotations

from drizzle_gateway.brokers.ring import Ring
from drizzle_gateway.wire.history import Position, Retention
from tests.support.history import FakeClock


def test_ring_numbers_without_gaps_and_reports_what_it_lost():
    clock = FakeClock()
    ring = Ring(Retention(3, ttl=10), clock, epoch="e1")
    assert [ring.append(n) for n in range(5)] == [1, 2, 3, 4, 5]
    page = ring.read(Position("e1", 2))
    assert page.complete and [e.offset for e in page.events] == [3, 4, 5]
    assert not ring.read(Position("e1", 1)).complete  # offset 2 fell out of the ring
    assert not ring.read(Position("other", 4)).complete
    assert [e.offset for e in ring.read(limit=2).events] == [4, 5]
    assert [e.offset for e in ring.read(Position("e1", 2), limit=1).events] == [3]
    clock.now += 10
    assert ring.read().events == [] and ring.position == Position("e1", 5)
    assert ring.read(Position("e1", 5)).complete  # nothing missed, nothing needed
    assert not ring.read(Position("e1", 4)).complete


def test_ring_weighs_what_it_holds_as_events_come_expire_and_are_dropped():
    clock = FakeClock()
    ring = Ring(Retention(2, ttl=10), clock, epoch="e1")
    ring.append("unweighed")
    assert ring.bytes == 0
    ring.append("a", 10)
    ring.append("b", 20)  # the ring is full: "unweighed" goes
    assert ring.bytes == 30
    ring.append("c", 40)  # "a" goes
    assert (ring.bytes, [e.data for e in ring.read().events]) == (60, ["b", "c"])
    clock.now += 5
    ring.append("d", 1)  # "b" goes; "c" is 5 s old, "d" new
    clock.now += 5  # "c" expires, "d" has 5 s left
    assert ([e.data for e in ring.read().events], ring.bytes) == (["d"], 1)
    assert ring.drop_oldest() is True
    assert (ring.bytes, ring.read().events, ring.drop_oldest(), ring.bytes) == (0, [], False, 0)


def test_a_ring_without_events_is_idle_once_its_ttl_has_passed_since_it_was_made():
    clock = FakeClock()
    ring = Ring(Retention(3, ttl=10), clock)
    assert not ring.idle()
    clock.now += 9.5
    assert not ring.idle()
    clock.now += 0.5
    assert ring.idle()
    assert not Ring(Retention(3), clock).idle()  # without a ttl, never


def test_reading_from_another_epoch_gives_the_last_events_as_incomplete():
    ring = Ring(Retention(5), epoch="e1")
    for n in range(5):
        ring.append(n)
    for since in (Position("e0", 2), Position("e1", 9)):  # another epoch, or an offset the ring never reached
        page = ring.read(since, limit=2)
        assert (page.position, [e.offset for e in page.events], page.complete) == (Position("e1", 5), [4, 5], False)
        assert [e.offset for e in ring.read(since).events] == [1, 2, 3, 4, 5]
    page = ring.read(Position("e1", 1), limit=2)
    assert ([e.offset for e in page.events], page.complete) == ([2, 3], True)


def test_a_limit_of_zero_is_no_limit_with_or_without_since():
    ring = Ring(Retention(5), epoch="e1")
    for n in range(4):
        ring.append(n)
    assert [e.offset for e in ring.read(limit=0).events] == [1, 2, 3, 4]
    assert [e.offset for e in ring.read(Position("e1", 2), limit=0).events] == [3, 4]
