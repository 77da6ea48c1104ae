"""`Deadlines`: every request gets ``limits.action_timeout``, answered TIMEOUT when it runs over, in start order."""

from __future__ import annotations

import asyncio

import pytest

from drizzle_gateway import Limits
from drizzle_gateway.client import RemoteError
from drizzle_gateway.runtime.deadlines import Deadlines
from drizzle_gateway.testing import TestClient
from tests.support.serve_app import make_gateway


async def outcome(client: TestClient, seconds: float) -> str:
    try:
        return (await client.call("lab", "sleep", {"seconds": seconds, "tag": "done"}))["tag"]
    except RemoteError as exc:
        return exc.code


@pytest.mark.gen_test(timeout=10)
async def test_each_request_over_its_timeout_is_answered_timeout_and_the_others_finish():
    async with TestClient(make_gateway(limits=Limits(action_timeout=0.3, rate=None))) as client:
        loop = asyncio.get_running_loop()
        started = loop.time()
        results = await asyncio.gather(*(outcome(client, seconds) for seconds in (0.05, 5, 0.1, 5, 0.2)))
        took = loop.time() - started
    assert results == ["done", "TIMEOUT", "done", "TIMEOUT", "done"]
    assert 0.3 <= took < 1.5


@pytest.mark.gen_test(timeout=10)
async def test_deadlines_fall_in_start_order_and_each_is_told_once():
    deadlines = Deadlines(0.2)
    stagger = asyncio.Event()
    first = asyncio.ensure_future(asyncio.sleep(5))
    deadlines.watch(first)
    asyncio.get_running_loop().call_later(0.1, stagger.set)
    await stagger.wait()
    second, finished = asyncio.ensure_future(asyncio.sleep(5)), asyncio.ensure_future(asyncio.sleep(0))
    deadlines.watch(second)
    deadlines.watch(finished)
    await finished
    deadlines.forget(finished)
    with pytest.raises(asyncio.CancelledError):
        await first
    assert not second.done()  # started 0.1 s later: 0.1 s to go
    assert deadlines.expired(first) and not deadlines.expired(first)
    with pytest.raises(asyncio.CancelledError):
        await second
    assert deadlines.expired(second)
    assert not deadlines.expired(finished)


def test_no_timeout_watches_nothing():
    deadlines = Deadlines(None)
    loop = asyncio.new_event_loop()
    try:
        task = loop.create_task(asyncio.sleep(0))
        deadlines.watch(task)
        loop.run_until_complete(task)
        assert not deadlines.expired(task)
    finally:
        loop.close()


@pytest.mark.gen_test(timeout=10)
async def test_an_actions_own_asyncio_timeout_is_its_own_not_the_gateways():
    async with TestClient(make_gateway(limits=Limits(action_timeout=1, rate=None))) as client:
        assert await client.call("lab", "bounded") == {"timed_out": True}
        assert await outcome(client, 0.01) == "done"
