"""`Peer`: the other end of a session, and the `PeerState` it is in.

A `Session` speaks to its peer only through this interface: the websocket
`Connection` in production (`drizzle_gateway.transport.connection`), the
in-process link under a `TestClient` (`drizzle_gateway.testing`).
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from tornado.httputil import HTTPServerRequest

    from ..wire.frame import Frame


class PeerState(enum.Enum):
    """Where a peer is in its life; it only moves forward."""

    CONNECTING = "connecting"  # handshake under way: nothing is sent yet
    OPEN = "open"  # frames flow both ways
    CLOSING = "closing"  # the server asked to close: what is queued still goes out, nothing new is read
    CLOSED = "closed"  # gone: frames are dropped


class Peer(Protocol):
    """What a session needs of the connection under it."""

    request: HTTPServerRequest
    """The handshake (what ``authenticate`` sees)."""

    address: str
    """The client's address, as the transport found it (behind trusted proxies, the one they forwarded)."""

    @property
    def state(self) -> PeerState:
        """Where the peer is in its life."""

    def send_frame(self, frame: str | Frame) -> bool:
        """Queue one text frame; True when the peer is congested (await `drained`)."""

    async def drained(self) -> None:
        """Return once the peer has read its backlog (or is gone)."""

    async def released(self) -> None:
        """Return once the peer no longer holds publishers (drained, gone, or its hold spent)."""

    def close(self, code: int | None = None, reason: str | None = None) -> None:
        """Close the connection after the frames already queued."""
