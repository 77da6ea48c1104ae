"""`Deadlines`: every request gets ``limits.action_timeout``, answered TIMEOUT when it runs over, whatever the order."""

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
async def test_a_shorter_timeout_set_later_still_fires_first():
    """Deadlines out of start order (a later request with a shorter timeout) are found all the same."""
    deadlines = Deadlines()
    long_limit = asyncio.ensure_future(asyncio.sleep(2, "done"))
    deadlines.watch(long_limit, 5)  # started under a 5 s limit
    loop = asyncio.get_running_loop()
    started = loop.time()
    short_limit = asyncio.ensure_future(asyncio.sleep(3, "done"))
    deadlines.watch(short_limit, 0.1)
    with pytest.raises(asyncio.CancelledError):
        await short_limit
    assert deadlines.expired(short_limit)
    assert loop.time() - started < 1.0
    assert await long_limit == "done"
    assert not deadlines.expired(long_limit)
    deadlines.forget(long_limit)


@pytest.mark.gen_test(timeout=10)
async def test_an_actions_own_asyncio_timeout_is_its_own_not_the_gateways():
    async with TestClient(make_gateway(limits=Limits(action_timeout=1, rate=None))) as client:
        assert await client.call("lab", "bounded") == {"timed_out": True}
        assert await outcome(client, 0.01) == "done"
