"""The stress suite's checker on hand-made frame sequences: it must flag what the scenarios look for.

These are pure and fast, so they run in the default test run (no ``stress`` marker).
"""

from __future__ import annotations

from tests.stress.checker import DeliveryChecker, Score


def event(offset: int, epoch: str | None = None, topic: str = "stress.a") -> dict:
    frame = {"topic": topic, "data": {"seq": offset}, "offset": offset}
    if epoch is not None:
        frame["epoch"] = epoch
    return frame


def subscribed_at(epoch: str = "e1", offset: int = 0) -> DeliveryChecker:
    checker = DeliveryChecker()
    checker.subscribing("s", "stress.a", None)
    checker.subscribed("s", "stress.a", {"topic": "stress.a", "epoch": epoch, "offset": offset})
    return checker


def test_every_offset_once_in_order_is_clean():
    checker = subscribed_at(offset=3)
    for offset in range(4, 10):
        checker.frame("s", event(offset))
    checker.finish("s", "stress.a", "e1", 9)
    assert checker.score("s", "stress.a") == Score(delivered=6)
    assert checker.position("s", "stress.a") == ("e1", 9)


def test_a_silent_skip_is_flagged():
    checker = subscribed_at()
    for offset in (1, 2, 5, 6):
        checker.frame("s", event(offset))
    score = checker.score("s", "stress.a")
    assert (score.delivered, score.skipped, score.lost, score.duplicated) == (4, 2, 0, 0)
    assert not score.clean
    assert score.anomalies == ["stress.a: offsets 3-4 skipped silently"]


def test_a_duplicate_is_flagged():
    checker = subscribed_at()
    for offset in (1, 2, 2, 3, 1):
        checker.frame("s", event(offset))
    score = checker.score("s", "stress.a")
    assert (score.delivered, score.duplicated, score.skipped) == (3, 2, 0)
    assert not score.clean


def test_a_tail_that_never_came_is_a_silent_skip():
    checker = subscribed_at()
    checker.frame("s", event(1))
    checker.finish("s", "stress.a", "e1", 4)
    assert checker.score("s", "stress.a").skipped == 3


def test_recovered_false_announces_the_loss_and_moves_the_position():
    checker = subscribed_at()
    checker.frame("s", event(1))
    checker.subscribing("s", "stress.a", {"epoch": "e1", "offset": 1})
    checker.subscribed("s", "stress.a", {"topic": "stress.a", "epoch": "e1", "offset": 30, "recovered": False})
    checker.frame("s", event(31))
    score = checker.score("s", "stress.a")
    assert (score.delivered, score.lost, score.skipped, score.duplicated) == (2, 29, 0, 0)
    assert score.clean


def test_replayed_events_before_a_recovered_reply_continue_the_position():
    checker = subscribed_at()
    checker.frame("s", event(1))
    checker.subscribing("s", "stress.a", {"epoch": "e1", "offset": 1})
    checker.frame("s", event(2))
    checker.frame("s", event(3))
    checker.subscribed("s", "stress.a", {"topic": "stress.a", "epoch": "e1", "offset": 3, "recovered": True})
    checker.frame("s", event(4))
    assert checker.score("s", "stress.a") == Score(delivered=4)


def test_a_new_epoch_on_an_event_announces_the_loss():
    checker = subscribed_at()
    checker.frame("s", event(1))
    checker.frame("s", event(2))
    checker.frame("s", event(3, epoch="e2"))
    checker.frame("s", event(4))
    checker.frame("s", event(3, epoch="e1"))  # the old epoch again: not the position's, so a new epoch once more
    score = checker.score("s", "stress.a")
    assert (score.delivered, score.lost, score.epochs, score.skipped, score.duplicated) == (5, 4, 2, 0, 0)
    assert checker.position("s", "stress.a") == ("e1", 3)


def test_a_gap_notice_announces_the_loss_and_delivery_goes_on_after_it():
    checker = subscribed_at()
    checker.frame("s", event(1))
    checker.frame("s", {"topic": "stress.a", "epoch": "e1", "gap": {"from": 2, "to": 40}})
    checker.frame("s", event(41))
    score = checker.score("s", "stress.a")
    assert (score.delivered, score.lost, score.skipped, score.duplicated) == (2, 39, 0, 0)


def test_a_gap_notice_that_starts_late_still_flags_what_it_does_not_cover():
    checker = subscribed_at()
    checker.frame("s", event(1))
    checker.frame("s", {"topic": "stress.a", "epoch": "e1", "gap": {"from": 5, "to": 9}})
    checker.frame("s", event(10))
    score = checker.score("s", "stress.a")
    assert (score.lost, score.skipped) == (5, 3)


def test_events_before_the_first_reply_are_checked_against_its_position():
    checker = DeliveryChecker()
    checker.subscribing("s", "stress.a", None)
    checker.frame("s", event(8))  # arrived before the reply that says the subscription starts after 7
    checker.subscribed("s", "stress.a", {"topic": "stress.a", "epoch": "e1", "offset": 8})
    checker.frame("s", event(9))
    score = checker.score("s", "stress.a")
    assert (score.delivered, score.duplicated) == (1, 1)


def test_an_event_after_an_acknowledged_unsubscribe_is_flagged_until_the_next_subscribe():
    checker = subscribed_at()
    checker.frame("s", event(1))
    checker.unsubscribed("s", "stress.a")
    checker.frame("s", event(2))
    checker.subscribing("s", "stress.a", None)
    checker.subscribed("s", "stress.a", {"topic": "stress.a", "epoch": "e1", "offset": 5})
    checker.frame("s", event(6))
    score = checker.score("s", "stress.a")
    assert (score.after_unsubscribe, score.delivered) == (1, 2)
    assert not score.clean


def test_subscribers_and_channels_are_scored_apart():
    checker = subscribed_at()
    checker.subscribing("t", "stress.a", None)
    checker.subscribed("t", "stress.a", {"topic": "stress.a", "epoch": "e1", "offset": 0})
    checker.frame("s", event(1))
    checker.frame("t", event(2))
    assert checker.score("s", "stress.a").clean
    assert checker.score("t", "stress.a").skipped == 1
