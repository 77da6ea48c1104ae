"""What a Redis broker delivers of channels with history (`CatchUp`), fed by a history the test supplies.

No Redis: numbered pub/sub bodies (``#<epoch>:<offset> <json>``) are
handed to `CatchUp.handle`, the stream reads are a `FakeStream` answering
the pages the test sets, and the listener records what it is handed.
Each event is delivered once, in order; what the stream no longer holds
is one `Gap`; a read that fails skips nothing.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import pytest

from drizzle_gateway.brokers import BrokerUnavailable
from drizzle_gateway.brokers.redis.catchup import CatchUp
from drizzle_gateway.wire.history import Logged, Page, Position, Retention
from drizzle_gateway.wire.recovery import Gap

RETENTION = Retention(100)
CHANNEL = "feed"


def body(epoch: str, offset: int, data: Any = None) -> bytes:
    """A numbered pub/sub body, as the APPEND script publishes it (after the origin)."""
    return f"#{epoch}:{offset} ".encode() + json.dumps({"n": offset} if data is None else data).encode()


def page(epoch: str, last: int, offsets, complete: bool = True) -> Page:
    """A page of the stream at ``epoch:last`` holding ``offsets``."""
    return Page(Position(epoch, last), [Logged(n, {"n": n}) for n in offsets], complete)


class Heard:
    """A listener: what it was handed, as (data, position); a `Gap` as ("gap", first, last)."""

    def __init__(self) -> None:
        self.items: list[Any] = []

    def __call__(self, channel: str, data: Any, position: Position | None = None) -> None:
        assert channel == CHANNEL
        if isinstance(data, Gap):
            assert position == data.position
            self.items.append(("gap", data.first, data.last))
        else:
            assert position is not None
            self.items.append((data["n"], position.epoch))

    @property
    def offsets(self) -> list[Any]:
        return [item[0] if item[0] != "gap" else item for item in self.items]


class FakeStream:
    """The channel's stream: answers the next page set (or raises the next error), and records each read."""

    def __init__(self) -> None:
        self.answers: list[Page | BaseException] = []
        self.after: list[tuple[str, Retention, Position]] = []
        self.since: list[tuple[str, Retention, float]] = []

    async def _answer(self) -> Page:
        answer = self.answers.pop(0)
        if isinstance(answer, BaseException):
            raise answer
        return answer

    async def read_after(self, channel: str, retention: Retention, last: Position) -> Page:
        self.after.append((channel, retention, last))
        return await self._answer()

    async def read_since(self, channel: str, retention: Retention, since: float) -> Page:
        self.since.append((channel, retention, since))
        return await self._answer()


@pytest.fixture
def heard() -> Heard:
    return Heard()


@pytest.fixture
def stream() -> FakeStream:
    return FakeStream()


@pytest.fixture
def catch_up(heard: Heard, stream: FakeStream) -> CatchUp:
    """A `CatchUp` whose one listener is ``heard``, on ``CHANNEL`` with history, standing at e1:1."""
    keeper = CatchUp({CHANNEL: heard}, stream.read_after, stream.read_since)
    keeper.expect(CHANNEL, RETENTION)
    keeper.known(CHANNEL, Position("e1", 1))
    return keeper


def test_events_in_order_are_handed_on_once_with_their_position(catch_up, heard, stream) -> None:
    for offset in (2, 3, 3, 1, 4):  # 3 twice and 1 again: delivered already
        assert catch_up.handle(CHANNEL, body("e1", offset)) is None
    assert heard.items == [(2, "e1"), (3, "e1"), (4, "e1")]
    assert catch_up.log.position(CHANNEL) == Position("e1", 4)
    assert stream.after == []


def test_known_starts_where_redis_stands_unless_delivered_past_it(catch_up, heard) -> None:
    catch_up.handle(CHANNEL, body("e1", 2))
    catch_up.known(CHANNEL, Position("e1", 1))  # an older answer: this process delivered 2 already
    assert catch_up.log.position(CHANNEL) == Position("e1", 2)
    catch_up.handle(CHANNEL, body("e1", 2))
    assert heard.items == [(2, "e1")]


def test_a_malformed_or_unlistened_message_is_skipped(catch_up, heard, caplog) -> None:
    caplog.set_level(logging.WARNING, logger="drizzle_gateway")
    for malformed in (b"#e1:x {}", b"#e1 {}", b"#e1:2 not json"):
        assert catch_up.handle(CHANNEL, malformed) is None
    assert len([r for r in caplog.records if "malformed history message" in r.getMessage()]) == 3
    assert catch_up.handle("elsewhere", body("e1", 2)) is None  # nobody listens here: not even kept
    assert catch_up.log.position("elsewhere") is None
    assert heard.items == [] and catch_up.log.position(CHANNEL) == Position("e1", 1)
    catch_up.handle(CHANNEL, body("e1", 2))
    assert heard.items == [(2, "e1")]


def test_a_failing_listener_is_logged_and_the_channel_goes_on(stream, caplog) -> None:
    caplog.set_level(logging.ERROR, logger="drizzle_gateway")
    calls: list[int] = []

    def failing(channel: str, data: Any, position: Position | None = None) -> None:
        calls.append(data["n"])
        raise RuntimeError("a broken fan-out")

    keeper = CatchUp({CHANNEL: failing}, stream.read_after, stream.read_since)
    keeper.known(CHANNEL, Position("e1", 0))
    keeper.handle(CHANNEL, body("e1", 1))
    keeper.handle(CHANNEL, body("e1", 2))
    assert calls == [1, 2] and keeper.log.position(CHANNEL) == Position("e1", 2)
    assert len([r for r in caplog.records if r.exc_info and "delivering a message" in r.getMessage()]) == 2


@pytest.mark.gen_test(timeout=5)
async def test_a_hole_is_read_from_the_stream_before_the_event_after_it(catch_up, heard, stream) -> None:
    stream.answers.append(page("e1", 6, [2, 3, 4, 5, 6]))  # the stream is further on than the event heard
    filling = catch_up.handle(CHANNEL, body("e1", 5))
    assert filling is not None and heard.items == []  # nothing is handed on before the missed events
    assert catch_up.log.position(CHANNEL) == Position("e1", 1)
    await filling
    assert stream.after == [(CHANNEL, RETENTION, Position("e1", 1))]
    assert heard.offsets == [2, 3, 4, 5]  # not 6: pub/sub carries it, after 5
    assert catch_up.handle(CHANNEL, body("e1", 6)) is None
    assert heard.offsets == [2, 3, 4, 5, 6]


@pytest.mark.gen_test(timeout=5)
async def test_what_the_stream_no_longer_holds_is_one_gap_in_its_place(catch_up, heard, stream, caplog) -> None:
    caplog.set_level(logging.WARNING, logger="drizzle_gateway")
    stream.answers.append(page("e1", 6, [4, 5, 6], complete=False))  # 2 and 3 were trimmed
    await catch_up.handle(CHANNEL, body("e1", 6))
    assert heard.offsets == [("gap", 2, 3), 4, 5, 6]
    assert any("offsets 2-3 are no longer in redis" in r.getMessage() for r in caplog.records)


@pytest.mark.gen_test(timeout=5)
async def test_a_gap_ends_before_the_event_heard_when_the_stream_holds_nothing_of_it(catch_up, heard, stream) -> None:
    stream.answers.append(page("e1", 9, [], complete=False))  # expired, and the channel is at 9 already
    await catch_up.handle(CHANNEL, body("e1", 6))
    assert heard.offsets == [("gap", 2, 5), 6]  # 7 to 9 come on pub/sub
    for offset in (7, 8, 9):
        catch_up.handle(CHANNEL, body("e1", offset))
    assert heard.offsets == [("gap", 2, 5), 6, 7, 8, 9]


@pytest.mark.gen_test(timeout=5)
async def test_a_failed_read_skips_nothing_and_is_tried_again(catch_up, heard, stream) -> None:
    stream.answers.append(BrokerUnavailable("redis at redis://127.0.0.1:6379/0 cannot be reached"))
    with pytest.raises(ConnectionError):  # the reader breaks its connection, and reconnects
        await catch_up.handle(CHANNEL, body("e1", 4))
    assert heard.items == [] and catch_up.log.position(CHANNEL) == Position("e1", 1)
    stream.answers.append(page("e1", 5, [2, 3, 4, 5]))
    await catch_up.handle(CHANNEL, body("e1", 5))  # the next event heard reads the same hole
    assert [last for _, _, last in stream.after] == [Position("e1", 1), Position("e1", 1)]
    assert heard.offsets == [2, 3, 4, 5]


@pytest.mark.gen_test(timeout=5)
async def test_catch_up_delivers_a_complete_page_at_once(catch_up, heard, stream) -> None:
    stream.answers.append(page("e1", 4, [2, 3, 4]))
    assert await catch_up.catch_up() == {}
    assert heard.offsets == [2, 3, 4]
    assert stream.after == [(CHANNEL, RETENTION, Position("e1", 1))]


@pytest.mark.gen_test(timeout=5)
async def test_catch_up_keeps_a_page_with_a_hole_until_pubsub_delivered_what_it_holds(catch_up, heard, stream) -> None:
    found = page("e1", 300, range(201, 301), complete=False)  # a flush after the reconnect trimmed 2-200
    stream.answers.append(found)
    holes = await catch_up.catch_up()
    assert holes == {CHANNEL: (Position("e1", 1), found)} and heard.items == []
    for offset in range(2, 251):  # pub/sub still carries these: not lost
        catch_up.handle(CHANNEL, body("e1", offset))
    catch_up.deliver_holes(holes)
    assert heard.offsets == list(range(2, 301))  # no gap: nothing was lost after all

    stream.answers.append(page("e1", 400, range(351, 401), complete=False))
    holes = await catch_up.catch_up()
    catch_up.deliver_holes(holes)  # pub/sub held nothing more: the rest is gone
    assert heard.offsets[-51:] == [("gap", 301, 350), *range(351, 401)]


@pytest.mark.gen_test(timeout=5)
async def test_catch_up_in_a_new_epoch_delivers_its_events_without_a_gap(catch_up, heard, stream) -> None:
    stream.answers.append(page("e2", 2, [1, 2], complete=False))  # Redis lost the channel: numbering anew
    assert await catch_up.catch_up() == {}
    assert heard.items == [(1, "e2"), (2, "e2")]  # the fan-out tells its readers of the new epoch
    assert catch_up.log.position(CHANNEL) == Position("e2", 2)


@pytest.mark.gen_test(timeout=5)
async def test_catch_up_whose_read_fails_raises_connection_error(catch_up, heard, stream) -> None:
    stream.answers.append(TimeoutError())
    with pytest.raises(ConnectionError):
        await catch_up.catch_up()
    assert heard.items == [] and catch_up.log.position(CHANNEL) == Position("e1", 1)


@pytest.mark.gen_test(timeout=5)
async def test_catch_up_reads_only_channels_listened_to_with_history(heard, stream) -> None:
    listeners = {CHANNEL: heard}
    keeper = CatchUp(listeners, stream.read_after, stream.read_since)
    keeper.known(CHANNEL, Position("e1", 1))  # its retention was never given
    keeper.known("gone", Position("e1", 1))
    keeper.expect("gone", RETENTION)  # no listener
    assert await keeper.catch_up() == {} and stream.after == []

    keeper.expect(CHANNEL, RETENTION)
    keeper.forget(CHANNEL)  # unsubscribed: its position and retention are dropped
    assert keeper.log.position(CHANNEL) is None
    keeper.known(CHANNEL, Position("e1", 1))
    assert await keeper.catch_up() == {} and stream.after == []
    keeper.expect(CHANNEL, RETENTION)
    keeper.forget(CHANNEL)
    keeper.unknown(CHANNEL)
    keeper.expect(CHANNEL, RETENTION)
    keeper.forget(CHANNEL)  # and where it stood unknown since
    keeper.expect(CHANNEL, RETENTION)
    assert await keeper.catch_up() == {} and stream.after == [] and stream.since == []


@pytest.mark.gen_test(timeout=5)
async def test_a_channel_subscribed_while_redis_was_down_gets_what_was_stamped_since(heard, stream, caplog) -> None:
    caplog.set_level(logging.WARNING, logger="drizzle_gateway")
    keeper = CatchUp({CHANNEL: heard}, stream.read_after, stream.read_since)
    keeper.expect(CHANNEL, RETENTION)
    before = time.time()
    keeper.unknown(CHANNEL)
    after = time.time()
    keeper.unknown(CHANNEL)  # still since the first time
    stream.answers.append(OSError("connection refused"))
    assert await keeper.catch_up() == {}
    assert len([r for r in caplog.records if "could not read the events of feed" in r.getMessage()]) == 1
    stream.answers.append(page("e1", 7, [6, 7]))
    assert await keeper.catch_up() == {}  # tried again on the next reconnect, from the same moment
    [(_, _, first), (_, retention, second)] = stream.since
    assert before <= first == second <= after and retention == RETENTION
    assert heard.offsets == [6, 7] and keeper.log.position(CHANNEL) == Position("e1", 7)
    keeper.handle(CHANNEL, body("e1", 8))
    assert heard.offsets == [6, 7, 8]
    stream.answers.append(page("e1", 8, []))
    assert await keeper.catch_up() == {}  # from now on it stands somewhere: read after it
    assert len(stream.since) == 2 and stream.after == [(CHANNEL, RETENTION, Position("e1", 8))]


@pytest.mark.gen_test(timeout=5)
async def test_a_channel_subscribed_while_redis_was_down_starts_where_redis_stands(heard, stream) -> None:
    keeper = CatchUp({CHANNEL: heard}, stream.read_after, stream.read_since)
    keeper.expect(CHANNEL, RETENTION)
    keeper.unknown(CHANNEL)
    stream.answers.append(page("e1", 5, []))  # nothing was published since
    assert await keeper.catch_up() == {}
    assert keeper.log.position(CHANNEL) == Position("e1", 5) and heard.items == []
    keeper.handle(CHANNEL, body("e1", 6))
    assert heard.offsets == [6]


@pytest.mark.gen_test(timeout=5)
async def test_unknown_is_nothing_to_catch_up_once_a_position_is_known(catch_up, heard, stream) -> None:
    catch_up.unknown(CHANNEL)  # it stands at e1:1 already
    stream.answers.append(page("e1", 1, []))
    assert await catch_up.catch_up() == {} and stream.since == []

    keeper = CatchUp({CHANNEL: heard}, stream.read_after, stream.read_since)
    keeper.expect(CHANNEL, RETENTION)
    keeper.unknown(CHANNEL)
    keeper.known(CHANNEL, Position("e1", 3))  # read once Redis answered
    stream.answers.append(page("e1", 3, []))
    assert await keeper.catch_up() == {} and stream.since == []
