"""The broker interface: publish to a channel, listen to a channel."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol

Listener = Callable[[str, Any], Awaitable[None] | None]
"""Called with (channel, data) for each message: a `Published` from this process, dumped data from others.

It may return an awaitable when local subscribers are congested: a broker's
``publish`` awaits it, so a publisher is slowed to what its readers take; a
broker reading other processes' messages drops it (its connection carries
every channel, so it keeps reading).
"""


class Broker(Protocol):
    """Moves validated, dumped messages from publishers to listeners.

    A process registers at most one listener per channel (its local
    fan-out); the broker's job is to reach the listeners of every process
    it spans, exactly once each, in publish order per channel. Brokers
    connect lazily, on first use.
    """

    async def publish(self, channel: str, data: Any) -> None:
        """Deliver ``data`` to every listener of ``channel``; returns once local readers have room."""

    async def subscribe(self, channel: str, listener: Listener) -> None:
        """Start calling ``listener`` for messages on ``channel``; in effect on return."""

    async def unsubscribe(self, channel: str) -> None:
        """Stop delivering ``channel`` to this process."""

    async def close(self) -> None:
        """Release connections and tasks."""
