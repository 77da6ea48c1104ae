"""Requests start inline and become tasks only when they wait."""

from __future__ import annotations

import asyncio

import pytest

from drizzle_gateway.eager import start


@pytest.mark.gen_test
async def test_a_waiting_request_does_not_hold_back_others(raw):
    ws = await raw()
    await ws.send({"request_id": "slow", "resource": "lab", "action": "sleep", "data": {"seconds": 0.3, "tag": "s"}})
    await ws.send({"request_id": "legacy", "resource": "lab", "action": "legacy"})
    await ws.send({"request_id": "fast", "resource": "lab", "action": "plain"})
    await ws.send({"request_id": "bad", "resource": "lab", "action": "refuse"})
    replies = [await ws.recv() for _ in range(4)]
    assert [r["request_id"] for r in replies][-1] == "slow"
    assert {r["request_id"]: r.get("data", r.get("code")) for r in replies} == {
        "slow": {"tag": "s"}, "legacy": {"kind": "coroutine"}, "fast": {"kind": "plain", "data": None},
        "bad": "QUOTA_EXCEEDED"}


@pytest.mark.gen_test
async def test_start_finishes_inline_or_hands_over_to_a_task():
    seen = []

    async def quick():
        seen.append("quick")

    assert start(quick()) is None and seen == ["quick"]

    gate = asyncio.get_running_loop().create_future()

    async def waits():
        seen.append("before")
        value = await gate
        await asyncio.sleep(0)
        seen.append(value)
        return value * 2

    task = start(waits())
    assert seen[-1] == "before" and not task.done()
    gate.set_result(21)
    assert await task == 42 and seen[-1] == 21


@pytest.mark.gen_test
async def test_a_started_coroutine_can_be_cancelled_and_sees_it():
    seen = []

    async def waits():
        try:
            await asyncio.get_running_loop().create_future()
        except asyncio.CancelledError:
            seen.append("cancelled")
            raise

    task = start(waits())
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert seen == ["cancelled"]


@pytest.mark.gen_test
async def test_exceptions_after_the_first_wait_reach_the_task():
    async def fails():
        await asyncio.sleep(0)
        raise ValueError("boom")

    task = start(fails())
    with pytest.raises(ValueError, match="boom"):
        await task
