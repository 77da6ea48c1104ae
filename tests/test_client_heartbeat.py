"""`PingWatch`: a ping every interval; a link that answers nothing within the timeout is given up once.

Over a real socket (a proxy that stops passing the server's bytes):
tests/test_client_reconnect.py.
"""

from __future__ import annotations

import asyncio

import pytest

from drizzle_gateway.client_heartbeat import PingWatch
from tests.support.polling import wait_until


class Link:
    """What the watch sees of a link: pings sent, what came back, and whether it was given up."""

    def __init__(self, answers: bool = True) -> None:
        self.answers = answers
        self.pings = 0
        self.heard = 0
        self.lost = 0

    def ping(self) -> None:
        self.pings += 1
        if self.answers:
            asyncio.get_running_loop().call_later(0.01, self.hear)

    def hear(self) -> None:
        self.heard += 1

    def watch(self, interval: float = 0.05, timeout: float = 0.1) -> PingWatch:
        return PingWatch(interval, timeout, self.ping, lambda: self.heard, self.give_up)

    def give_up(self) -> None:
        self.lost += 1


@pytest.mark.gen_test(timeout=10)
async def test_a_link_that_answers_is_pinged_on_and_kept():
    link = Link()
    watch = link.watch()
    watch.start()
    await wait_until(lambda: link.pings >= 5, 5)
    watch.stop()
    assert link.lost == 0 and link.heard >= 4


@pytest.mark.gen_test(timeout=10)
async def test_a_link_that_answers_nothing_is_given_up_once_after_the_timeout():
    link = Link(answers=False)
    watch = link.watch()
    loop = asyncio.get_running_loop()
    began = loop.time()
    watch.start()
    await wait_until(lambda: link.lost, 5)
    assert loop.time() - began >= 0.05 + 0.1  # an interval to the ping, then the timeout
    await asyncio.sleep(0.3)
    assert (link.pings, link.lost) == (1, 1)  # no more pings once it is given up


@pytest.mark.gen_test(timeout=10)
async def test_any_frame_counts_as_an_answer_and_a_stopped_watch_gives_nothing_up():
    link = Link(answers=False)
    watch = link.watch()
    watch.start()
    for _ in range(6):  # frames keep arriving, pongs never do
        await asyncio.sleep(0.05)
        link.hear()
    assert link.lost == 0
    watch.stop()
    await asyncio.sleep(0.3)
    assert link.lost == 0
