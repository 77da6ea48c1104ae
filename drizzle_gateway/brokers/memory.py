"""The embedded broker: one process, no I/O, delivery in publish order."""

from __future__ import annotations

from typing import Any

from .base import Listener


class MemoryBroker:
    """In-process fan-out; the default when a Gateway is given no broker."""

    def __init__(self) -> None:
        self._listeners: dict[str, Listener] = {}

    async def publish(self, channel: str, data: Any) -> None:
        """Hand ``data`` to the channel's listener at once; wait while its readers are congested."""
        listener = self._listeners.get(channel)
        if listener is not None:
            congested = listener(channel, data)
            if congested is not None:
                await congested

    async def subscribe(self, channel: str, listener: Listener) -> None:
        """Register the process's listener for ``channel``."""
        self._listeners[channel] = listener

    async def unsubscribe(self, channel: str) -> None:
        """Forget ``channel``."""
        self._listeners.pop(channel, None)

    async def close(self) -> None:
        """Forget every channel."""
        self._listeners.clear()
