"""`BusyPoll`: after a message, the loop polls its sockets for ``limits.busy_poll`` seconds before it sleeps.

Watched at the loop's selector over a real socket: with busy polling every
``select`` in the window after a request has a zero timeout, and the loop
sleeps again once the window ends; without it, the loop sleeps at once.
The adaptive part (it rests after windows that found nothing) and a
second event loop are checked on `BusyPoll` alone.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest
from tornado.websocket import websocket_connect

from drizzle_gateway import Limits
from drizzle_gateway.runtime.busy_poll import MISSES_TO_REST, PROBE_EVERY, BusyPoll
from tests.support.polling import wait_until
from tests.support.selects import watching

WINDOW = 0.05


async def ping(http_port: int) -> Any:
    """A websocket that sent one ``__ping__`` and read its reply."""
    ws = await websocket_connect(f"ws://127.0.0.1:{http_port}/ws")
    ws.write_message(json.dumps({"request_id": 1, "action": "__ping__"}))
    reply = json.loads(await asyncio.wait_for(ws.read_message(), 5))
    assert reply["request_id"] == 1 and "error" not in reply, reply
    return ws


@pytest.fixture
def selects(io_loop):
    with watching(io_loop.asyncio_loop) as recording:
        yield recording


@pytest.mark.gen_test(timeout=10)
@pytest.mark.gateway_options(limits=Limits(busy_poll=WINDOW))
async def test_after_a_request_the_loop_polls_without_sleeping_for_the_window_then_sleeps(
        gateway, http_server, http_port, selects):
    ws = await ping(http_port)
    poll = gateway.hub.busy_poll
    assert poll is not None
    await wait_until(lambda: not poll.polling, 5)
    until = poll._until  # the end of the window the request started (nothing else was read since)
    assert until > 0
    await asyncio.sleep(0.05)
    window = [(when, timeout) for when, timeout in selects.calls if until - WINDOW <= when]
    slept = [when for when, timeout in window if timeout is None or timeout > 0]
    assert slept, "the loop never slept again"
    assert slept[0] >= until  # no sleep within the window...
    assert any(when < until for when, timeout in window)  # ...through which it polled
    ws.close()


@pytest.mark.gen_test(timeout=10)
@pytest.mark.gateway_options(limits=Limits(busy_poll=None))
async def test_without_busy_polling_the_loop_sleeps_right_after_a_request(gateway, http_server, http_port, selects):
    ws = await ping(http_port)
    replied = time.perf_counter()
    assert gateway.hub.busy_poll is None
    await asyncio.sleep(WINDOW)
    slept = [when for when, timeout in selects.calls if when >= replied and (timeout is None or timeout > 0)]
    assert slept and slept[0] - replied < WINDOW / 2
    ws.close()


@pytest.mark.gen_test(timeout=10)
async def test_polling_rests_after_windows_that_found_nothing_and_probes_every_so_often():
    poll = BusyPoll(0.005)
    for missed in range(1, MISSES_TO_REST + 1):
        poll.touch()
        assert poll.polling
        await wait_until(lambda: not poll.polling, 2)
        assert poll.misses == missed
    for _ in range(PROBE_EVERY - 1):  # resting: these start no window
        poll.touch()
        assert not poll.polling
    poll.touch()  # the probe
    assert poll.polling
    await asyncio.sleep(0)  # the window is set a turn later
    poll.touch()  # a message while the loop polls: polling pays again
    assert poll.misses == 0
    await wait_until(lambda: not poll.polling, 2)
    poll.touch()
    assert poll.polling
    await wait_until(lambda: not poll.polling, 2)


@pytest.mark.gen_test(timeout=10)
async def test_messages_read_in_the_turn_that_starts_a_window_do_not_count_as_paying():
    poll = BusyPoll(0.005)
    for missed in range(1, MISSES_TO_REST + 1):
        for _ in range(3):  # several frames of one chunk, or several sockets ready at once
            poll.touch()
        await wait_until(lambda: not poll.polling, 2)
        assert poll.misses == missed
    poll.touch()
    assert not poll.polling


@pytest.mark.gen_test(timeout=10)
async def test_a_frame_the_last_poll_of_a_window_found_counts_as_paying():
    poll = BusyPoll(0.001)
    poll.touch()
    await asyncio.sleep(0)  # the window is set
    while time.perf_counter() < poll._until:  # its end passes without a loop turn...
        pass
    await asyncio.sleep(0)  # ...so the next poll is past it, and finds a frame, read a turn later:
    assert poll.polling
    poll.touch()
    assert poll.misses == 0
    await wait_until(lambda: not poll.polling, 2)
    assert poll.misses == 1  # the window that frame started found nothing


def test_a_loop_that_stopped_while_polling_does_not_keep_the_next_loop_from_polling():
    poll = BusyPoll(0.005)

    async def touched() -> bool:
        poll.touch()
        return poll.polling

    first = asyncio.new_event_loop()
    assert first.run_until_complete(touched())
    first.close()  # stopped with the poll's callback still queued, then closed
    assert poll._loop is first and not poll.polling

    async def polls_here() -> int:
        assert await touched()
        await wait_until(lambda: not poll.polling, 2)
        return poll.misses

    assert asyncio.run(polls_here()) == 1
