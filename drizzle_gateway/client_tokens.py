"""A client's token: where it comes from, and its refresh ahead of each expiry the gateway announces.

`Client` and `TestClient` take ``token=`` (a fixed string) or
``get_token=`` (a callable, plain or async, asked for a fresh token each
time one is needed). They send ``__auth__`` after every connect (and so on
every reconnect); with ``get_token``, when the reply says the identity
expires (``expires_in``, docs/protocol.md), a `Refresher` sends ``__auth__``
again with a fresh token ``refresh_ahead`` seconds before the end, or
halfway for short-lived tokens, so the connection is never closed with
4003. A fixed ``token`` is never sent again before an expiry.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import Any

logger = logging.getLogger("drizzle_gateway.client")

GetToken = Callable[[], "str | Awaitable[str]"]
"""``get_token() -> str``, plain or async."""

LAST_TRY = 0.1
"""Seconds before the expiry under which a failed refresh is not tried again (the gateway closes with 4003)."""


class TokenSource:
    """Where a client's token comes from: ``get_token()`` when given (called each time), else ``token``."""

    def __init__(self, token: str | None = None, get_token: GetToken | None = None) -> None:
        self.token = token
        self.get_token = get_token

    @property
    def given(self) -> bool:
        """Whether the client authenticates with ``__auth__`` at all."""
        return self.token is not None or self.get_token is not None

    @property
    def renewable(self) -> bool:
        """Whether a fresh token can be had before an expiry (``get_token``); a fixed ``token`` is never refreshed."""
        return self.get_token is not None

    async def fetch(self) -> str:
        """A token to send now: a fresh one from ``get_token``, else the fixed ``token``."""
        if self.get_token is None:
            if self.token is None:
                raise RuntimeError("no token: give token= or get_token=")
            return self.token
        token = self.get_token()
        if inspect.isawaitable(token):
            token = await token
        if not isinstance(token, str):
            raise TypeError(f"get_token() must return a str, not {type(token).__name__}")
        return token


def refresh_delay(expires_in: float, ahead: float) -> float:
    """Seconds from now until a refresh: ``ahead`` before the expiry, halfway when the identity is shorter than that."""
    return max(0.0, expires_in - min(ahead, expires_in / 2))


class Refresher:
    """Sends ``__auth__`` again (``renew``) ahead of each expiry an ``__auth__`` reply announces.

    One task at most, sleeping until the next refresh is due (`refresh_delay`).
    A refresh that fails (``get_token`` raised, the gateway refused or did not
    answer) is logged and tried again halfway to the expiry, until `LAST_TRY`
    seconds are left. A refresh whose reply names no expiry ends it;
    `stop` ends it at once (the client calls it when the connection ends).
    """

    def __init__(self, renew: Callable[[], Awaitable[Any]], ahead: float) -> None:
        self.renew = renew
        self.ahead = ahead
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        """Whether a refresh is scheduled."""
        return self._task is not None and not self._task.done()

    def schedule(self, reply: Any) -> None:
        """Plan refreshes after an ``__auth__`` ``reply``; none when it names no expiry."""
        self.stop()
        expires_in = expiry_of(reply)
        if expires_in is not None:
            self._task = asyncio.ensure_future(self._run(expires_in))

    def stop(self) -> None:
        """No more refreshes."""
        if self._task is not None:
            self._task.cancel()
            self._task = None

    async def _run(self, expires_in: float) -> None:
        loop = asyncio.get_running_loop()
        me = asyncio.current_task()
        ends = loop.time() + expires_in
        while True:
            await asyncio.sleep(refresh_delay(ends - loop.time(), self.ahead))
            try:
                reply = await self.renew()
            except Exception as exc:  # noqa: BLE001 - any failure: try again while there is time
                if self._task is not me:  # stopped meanwhile (3.11's wait_for can swallow the cancel)
                    return
                left = ends - loop.time()
                if left <= LAST_TRY:
                    logger.warning("token refresh failed (%s); the connection's identity is not renewed", exc)
                    return
                logger.warning("token refresh failed (%s); trying again in %.3f s", exc,
                               refresh_delay(left, self.ahead))
                continue
            renewed = expiry_of(reply)
            if renewed is None:
                return
            ends = loop.time() + renewed


def expiry_of(reply: Any) -> float | None:
    """The ``expires_in`` of an ``__auth__`` reply (seconds), or None when the identity never expires."""
    if isinstance(reply, dict) and isinstance(reply.get("expires_in"), int | float):
        return float(reply["expires_in"])
    return None
