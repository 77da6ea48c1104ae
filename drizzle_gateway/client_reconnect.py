"""Reconnecting a client on its own after a dropped connection, with backoff.

`Client` and `TestClient` take ``auto_reconnect=True``. When the link then
ends with a close after which reconnecting helps
(`ConnectionClosed.should_reconnect`: 1001, 1006, 1011, 1012, 4008, a
missed ping), a `Relinker` waits `backoff_delay` and calls the client's
`reconnect` (which authenticates again and subscribes again with
``since``), again and again with growing delays, until one succeeds, the
token is refused, or the client is closed. Meanwhile the client's events
go on: ``async for event in client.events()`` does not end, and publishes
waiting for their reply are sent again on the new link. Requests sent
while no link is up fail with `ConnectionClosed`; `BaseClient.connected`
waits for the next link. Every failed attempt is logged and tried again
(the network, a handshake refused while an instance drains, a gateway
answering ``RATE_LIMITED`` or ``INTERNAL_ERROR`` to ``__auth__``, a
``get_token`` that failed); only a refusal of the client itself
(``UNAUTHENTICATED``, ``FORBIDDEN``) ends the attempts.

What the application must hear of, it does: every topic that may have
missed events while the client was away gets one `Event` with
``recovered=False`` (and no data) in its place among the topic's events,
ahead of the first event of the new link: a topic with history whose
reply said ``recovered: false``, one subscribed before any event arrived,
or one without history, where nothing published meanwhile can come back.
A topic the gateway now refuses gets that notice as its last event.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

logger = logging.getLogger("drizzle_gateway.client")

Backoff = Callable[[int], float]
"""Seconds to wait before attempt number ``n`` (0 for the first)."""


class Relinker:
    """One task at most, reconnecting a client (``relink``) until it succeeds, is refused or is stopped.

    ``relink`` is the client's `reconnect`. What it raises is tried again
    after the next backoff, unless ``final(error)`` says the client itself
    was refused: then the attempts end and ``give_up`` is called with it.
    """

    def __init__(self, relink: Callable[[], Awaitable[Any]], backoff: Backoff,
                 final: Callable[[BaseException], bool], give_up: Callable[[BaseException], None]) -> None:
        self.relink = relink
        self.backoff = backoff
        self.final = final
        self.give_up = give_up
        self.attempts = 0
        """Attempts made since the link last dropped."""
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        """Whether the client is between a dropped link and the next one."""
        return self._task is not None and not self._task.done()

    @property
    def task(self) -> asyncio.Task[None] | None:
        """The attempts under way, or None."""
        return self._task if self.running else None

    def start(self) -> None:
        """Begin reconnecting (no-op while already at it)."""
        if not self.running:
            self.attempts = 0
            self._task = asyncio.ensure_future(self._run())

    def stop(self) -> None:
        """No more attempts (the client is closed)."""
        if self._task is not None and self._task is not asyncio.current_task():
            self._task.cancel()
        self._task = None

    async def _run(self) -> None:
        me = asyncio.current_task()
        while True:
            await asyncio.sleep(self.backoff(self.attempts))
            if self._task is not me:  # stopped, though a cancel can be lost (3.11's wait_for swallows one)
                return
            self.attempts += 1
            try:
                await self.relink()
            except Exception as failed:  # noqa: BLE001 - every failure is logged, and tried again unless final
                if self._task is not me:
                    return
                if self.final(failed):
                    logger.warning("reconnecting stopped: %s: %s", type(failed).__name__, failed)
                    self._task = None
                    self.give_up(failed)
                    return
                logger.warning("reconnect attempt %d failed (%s: %s); trying again", self.attempts,
                               type(failed).__name__, failed)
                continue
            logger.info("reconnected after %d attempt(s)", self.attempts)
            return
