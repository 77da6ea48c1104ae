"""Waiting for a condition, with a bounded deadline, instead of sleeping for long enough."""

from __future__ import annotations

import asyncio


async def eventually(check, timeout: float, interval: float = 0.05):
    """Await ``check()`` until it returns a truthy value; the value, or None at the deadline."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = await check()
        if value or loop.time() >= deadline:
            return value
        await asyncio.sleep(interval)


async def wait_until(condition, timeout: float) -> None:
    """Poll ``condition`` until it is true; TimeoutError after ``timeout`` seconds."""
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)
