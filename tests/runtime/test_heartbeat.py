"""`Heartbeat`: one timer pings every connection each interval and closes the ones that do not answer in time.

The socket-level heartbeat (a silent peer closed with "ping timed out", a
live one kept, a held peer excused) is in test_limits and test_flow_control.
"""

from __future__ import annotations

import asyncio

import pytest
from tornado.websocket import websocket_connect

from drizzle_gateway import Limits
from drizzle_gateway.runtime.heartbeat import Heartbeat
from tests.support.lag import LoopLag
from tests.support.polling import wait_until

TOLERANCE = 0.08
"""How far a ping may land from its due time on a steady loop (plus how late the loop ran: `LoopLag`)."""


class Member:
    """A heartbeat member that records when it was pinged; ``answers`` says whether it pongs."""

    def __init__(self, answers: bool = True, alive: bool = True) -> None:
        self.answers = answers
        self.alive = alive
        self.pinged: list[float] = []
        self.missed = 0

    def send_heartbeat(self) -> bool:
        if self.alive:
            self.pinged.append(asyncio.get_running_loop().time())
        return self.alive

    def heartbeat_answered(self) -> bool:
        return self.answers

    def heartbeat_missed(self) -> None:
        self.missed += 1


@pytest.mark.gen_test(timeout=10)
async def test_each_member_is_pinged_every_interval_from_when_it_joined():
    beat = Heartbeat(0.2, 0.1)
    loop = asyncio.get_running_loop()
    first, second = Member(), Member()
    async with LoopLag() as lag:
        joined = loop.time()
        beat.add(first)
        await asyncio.sleep(0.1)
        second_joined = loop.time()
        beat.add(second)
        await wait_until(lambda: len(second.pinged) >= 3, 5)
    allowed = TOLERANCE + lag.worst
    assert first.pinged[0] - joined == pytest.approx(0.2, abs=allowed)
    assert second.pinged[0] - second_joined == pytest.approx(0.2, abs=allowed)
    for member in (first, second):
        gaps = [b - a for a, b in zip(member.pinged, member.pinged[1:], strict=False)]
        assert all(gap == pytest.approx(0.2, abs=allowed) for gap in gaps), (gaps, lag.worst)
    assert first.missed == second.missed == 0
    beat.discard(first)
    beat.discard(second)


@pytest.mark.gen_test(timeout=10)
async def test_a_member_that_does_not_answer_is_told_once_after_the_timeout_and_pinged_no_more():
    beat = Heartbeat(0.3, 0.1)
    silent, live = Member(answers=False), Member()
    loop = asyncio.get_running_loop()
    async with LoopLag() as lag:
        beat.add(silent)
        beat.add(live)
        await wait_until(lambda: silent.missed, 5)
        missed_at = loop.time()
    assert missed_at - silent.pinged[0] == pytest.approx(0.1, abs=TOLERANCE + lag.worst)
    await wait_until(lambda: len(live.pinged) >= 3, 5)
    assert silent.missed == 1 and len(silent.pinged) == 1
    assert len(beat) == 1
    beat.discard(live)


@pytest.mark.gen_test(timeout=10)
async def test_a_member_gone_or_discarded_is_dropped_and_an_empty_heartbeat_keeps_no_timer():
    beat = Heartbeat(0.1, 0.1)
    gone, left, stays = Member(alive=False), Member(), Member()
    for member in (gone, left, stays):
        beat.add(member)
    beat.discard(left)
    await wait_until(lambda: len(stays.pinged) >= 2, 5)
    assert len(beat) == 1 and not left.pinged and not gone.pinged and gone.missed == 0
    beat.discard(stays)
    assert beat._timer is None


@pytest.mark.gen_test(timeout=10)
async def test_an_interval_shorter_than_the_slack_still_pings_once_per_interval():
    beat = Heartbeat(0.01, 0.01)
    member = Member()
    async with LoopLag() as lag:
        beat.add(member)
        await wait_until(lambda: len(member.pinged) >= 20, 5)
    beat.discard(member)
    gaps = [b - a for a, b in zip(member.pinged, member.pinged[1:], strict=False)]
    assert min(gaps) >= 0.01 - 0.01 / 4, gaps  # never sooner than the interval, less its slack
    assert sorted(gaps)[len(gaps) // 2] <= 0.01 + 0.02 + lag.worst, gaps  # but about once per interval


@pytest.fixture
def gateway_options(gateway_options):
    return {**gateway_options, "limits": Limits(ping_interval=0.3, ping_timeout=0.3)}


@pytest.mark.gen_test(timeout=20)
async def test_connections_share_the_hubs_timer_rather_than_a_ping_task_each(gateway, http_server, http_port):
    before = len(asyncio.all_tasks())
    sockets = [await websocket_connect(f"ws://127.0.0.1:{http_port}/ws") for _ in range(20)]
    await wait_until(lambda: gateway.hub.session_count == 20, 5)
    assert len(gateway.hub.heartbeat) == 20
    # one task per connection reads its frames (and one per client socket here); none pings
    assert len(asyncio.all_tasks()) - before <= 2 * 20 + 2
    await asyncio.sleep(1.0)  # three intervals: every client answered its pings
    assert gateway.hub.session_count == 20
    for ws in sockets:
        ws.close()
    await wait_until(lambda: len(gateway.hub.heartbeat) == 0, 5)
