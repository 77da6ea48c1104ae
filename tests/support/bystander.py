"""The bystander every attack is measured against: one well-behaved connection pinging every 10 ms.

It sends ``__ping__`` (never retried, so a refusal or a close shows) and
records each round trip while the attack runs; the attack passes only if the
bystander's slowest round trip stays under `WORST_PING`, every answer was
"pong", and its connection is still open at the end.
"""

from __future__ import annotations

import asyncio
import logging
import time
from types import TracebackType

from drizzle_gateway.client import BaseClient

logger = logging.getLogger("tests.adversarial")

WORST_PING = 0.1
"""docs/security.md: the slowest ``__ping__`` round trip a bystander may see while any attack runs, in seconds."""
PING_INTERVAL = 0.01
"""Seconds between the end of one bystander ping and the next: under the 100 frames/s the bystander's bucket refills."""
PING_TIMEOUT = 2.0
"""The bound on one ping's wait: far past `WORST_PING`, so a lost reply fails the attack instead of hanging it."""


class Bystander:
    """Ping ``client`` every `PING_INTERVAL` inside ``async with``; `check` asserts what the attack may not break."""

    def __init__(self, client: BaseClient, attack: str) -> None:
        self.client = client
        self.attack = attack
        self.round_trips: list[float] = []
        self._stop = asyncio.Event()
        self._pinging: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Bystander:
        assert await self._ping() == "pong"  # connected and answered before the attack starts
        self._pinging = asyncio.ensure_future(self._keep_pinging())
        return self

    async def __aexit__(self, kind: type[BaseException] | None, error: BaseException | None,
                        trace: TracebackType | None) -> None:
        self._stop.set()
        assert self._pinging is not None
        await asyncio.wait_for(self._pinging, PING_TIMEOUT + 1)  # raises what a ping raised

    @property
    def worst(self) -> float:
        """The slowest round trip seen, in seconds."""
        return max(self.round_trips)

    async def _ping(self) -> str:
        started = time.perf_counter()
        answer = await self.client.request({"action": "__ping__"}, timeout=PING_TIMEOUT)
        self.round_trips.append(time.perf_counter() - started)
        return answer

    async def _keep_pinging(self) -> None:
        while not self._stop.is_set():
            assert await self._ping() == "pong"
            try:
                await asyncio.wait_for(self._stop.wait(), PING_INTERVAL)
            except TimeoutError:
                pass

    async def check(self) -> None:
        """Log the worst round trip; assert it is under `WORST_PING` and the connection still answers."""
        pings = len(self.round_trips)
        logger.info("%s: bystander's slowest ping %.1f ms of %d (median %.1f ms)", self.attack,
                    self.worst * 1000, pings, sorted(self.round_trips)[pings // 2] * 1000)
        assert pings >= 3, f"the attack ended before the bystander pinged through it ({pings} pings)"
        assert self.client.close_code is None, (self.client.close_code, self.client.close_reason)
        assert self.worst < WORST_PING, f"{self.attack}: the bystander waited {self.worst * 1000:.1f} ms"
        assert await self._ping() == "pong"
