"""`Deadlines`: every request gets ``limits.action_timeout``, answered TIMEOUT when it runs over, whatever the order."""

from __future__ import annotations

import asyncio

import pytest

from drizzle_gateway import Limits
from drizzle_gateway.client import RemoteError
from drizzle_gateway.testing import TestClient
from tests.support.serve_app import make_gateway


async def outcome(client: TestClient, seconds: float) -> str:
    try:
        return (await client.call("lab", "sleep", {"seconds": seconds, "tag": "done"}))["tag"]
    except RemoteError as exc:
        return exc.code


@pytest.mark.gen_test(timeout=10)
async def test_each_request_over_its_timeout_is_answered_timeout_and_the_others_finish():
    gateway = make_gateway()
    gateway.limits = Limits(action_timeout=0.3, rate=None)
    async with TestClient(gateway) as client:
        loop = asyncio.get_running_loop()
        started = loop.time()
        results = await asyncio.gather(*(outcome(client, seconds) for seconds in (0.05, 5, 0.1, 5, 0.2)))
        took = loop.time() - started
    assert results == ["done", "TIMEOUT", "done", "TIMEOUT", "done"]
    assert 0.3 <= took < 1.5


@pytest.mark.gen_test(timeout=10)
async def test_a_shorter_timeout_set_later_still_fires_first():
    gateway = make_gateway()
    gateway.limits = Limits(action_timeout=5, rate=None)
    async with TestClient(gateway) as client:
        long_limit = asyncio.ensure_future(outcome(client, 2))
        while not any(session.tasks for session in gateway.hub.sessions):  # started under the 5 s limit
            await asyncio.sleep(0.001)
        gateway.limits = Limits(action_timeout=0.1, rate=None)
        loop = asyncio.get_running_loop()
        started = loop.time()
        assert await outcome(client, 3) == "TIMEOUT"
        assert loop.time() - started < 1.0
        assert await long_limit == "done"


@pytest.mark.gen_test(timeout=10)
async def test_an_actions_own_asyncio_timeout_is_its_own_not_the_gateways():
    gateway = make_gateway()
    gateway.limits = Limits(action_timeout=1, rate=None)
    async with TestClient(gateway) as client:
        assert await client.call("lab", "bounded") == {"timed_out": True}
        assert await outcome(client, 0.01) == "done"
