"""DrizzleWebSocket: the seed's websocket handler, a drizzle_gateway `Connection` speaking its dialect."""

from __future__ import annotations

from typing import cast

from drizzle_gateway.gateway import Gateway
from drizzle_gateway.transport.connection import Connection, Served
from drizzle_gateway.wire.dialect import Dialect

from . import serving
from .gateway import SETTINGS_KEY
from .handler import DrizzleHandler
from .keys import ALL

__all__ = ["DrizzleHandler", "DrizzleWebSocket"]


class DrizzleWebSocket(Connection):
    """Route it as ``(r"/ws", DrizzleWebSocket)``; `init_drizzle` supplies the gateway.

    Every socket listens to ``__all__`` from the moment it opens. The
    browser origin is checked by the gateway's policy (same host, or
    ``allowed_origins`` given to `init_drizzle`).
    """

    def initialize(self, gateway: Served | None = None, protocol: Dialect | None = None) -> None:
        if gateway is None:
            gateway = self.application.settings.get(SETTINGS_KEY)
            if gateway is None:
                raise RuntimeError("DrizzleWebSocket needs init_drizzle(app, routes, ioloop) to be called first")
        super().initialize(gateway, protocol)

    async def get(self, *args: str, **kwargs: str) -> None:
        """Bind this socket's gateway to its connection's context, then serve it as a `Connection`.

        Everything the socket runs from here (``open``, each message, its
        handlers' actions and the tasks they start) publishes through the
        gateway of the application that accepted it (see `tornado_drizzle.serving`).
        """
        serving.bind(cast(Gateway, self.gateway))
        await super().get(*args, **kwargs)

    def select_subprotocol(self, subprotocols: list[str]) -> str | None:
        """None: this socket speaks the Tornado Drizzle dialect, not ``drizzle.v1``."""
        return None

    async def open(self, *args: str, **kwargs: str) -> None:
        """Register the socket and subscribe it to ``__all__`` before any message is read."""
        super().open(*args, **kwargs)
        await self.subscribe(ALL)
