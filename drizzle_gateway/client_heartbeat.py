"""The Python client's heartbeat: a link that stops answering counts as dropped.

As drizzle.js does, `Client` pings the server every ``ping_interval``
seconds (a websocket ping, which the server answers without running any
request) and gives the link up when nothing at all has come back
``ping_timeout`` seconds after a ping: no pong, no frame. It then cuts the
socket at once, without waiting for a close handshake a dead peer would
never answer, and the link ends as dropped ("ping timed out"), after which
``auto_reconnect`` reconnects. A link that died silently (a peer's machine
gone, a NAT forgetting the connection) is so noticed within ``ping_interval
+ ping_timeout`` seconds.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable


class PingWatch:
    """One task per link: ``ping()`` every ``interval`` seconds, ``lost()`` once a ping goes unanswered.

    ``heard()`` counts what came back so far (frames and pongs): a ping is
    answered when the count grew within ``timeout`` seconds.
    """

    def __init__(self, interval: float, timeout: float, ping: Callable[[], None], heard: Callable[[], int],
                 lost: Callable[[], None]) -> None:
        self.interval = interval
        self.timeout = timeout
        self.ping = ping
        self.heard = heard
        self.lost = lost
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Begin watching (the link is up)."""
        self._task = asyncio.ensure_future(self._run())

    def stop(self) -> None:
        """Stop watching (the link ended)."""
        if self._task is not None and self._task is not asyncio.current_task():
            self._task.cancel()
        self._task = None

    async def _run(self) -> None:
        me = asyncio.current_task()
        while self._task is me:
            await asyncio.sleep(self.interval)
            before = self.heard()
            try:
                self.ping()
            except Exception:  # noqa: BLE001 - the link is closing: its reader ends it
                return
            await asyncio.sleep(self.timeout)
            if self._task is me and self.heard() == before:
                self._task = None
                self.lost()
                return
