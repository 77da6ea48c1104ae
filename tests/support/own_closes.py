"""A `Client` that tells the links ended under it (by the server, the network) from those its own `close` ended."""

from __future__ import annotations

from typing import Any

from drizzle_gateway.client import Client


class ClosesNoticed(Client):
    """Calls `_ended_under` for each link that ends other than by the client's own `close`."""

    def __init__(self, url: str, **options: Any) -> None:
        super().__init__(url, **options)
        self._closing = False

    async def close(self) -> None:
        self._closing = True
        try:
            await super().close()
        finally:
            self._closing = False

    def _ended_with(self, code: int | None, reason: str | None) -> None:
        if not self._closing:
            self._ended_under(code, reason)
        super()._ended_with(code, reason)

    def _ended_under(self, code: int | None, reason: str | None) -> None:
        """A link ended with ``code`` and ``reason``, not by `close` (called before the client reacts)."""
