"""Publishing and subscribing by key, as the seed's ``subscriber`` module offered.

There is no global queue or table: each call goes to the gateway serving
the code that runs it (see `tornado_drizzle.serving`), and ``subscriptions``
is a read-only view of that gateway's sockets.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any, cast

from .keys import check_key
from .serving import current_gateway

if TYPE_CHECKING:
    from drizzle_gateway.transport.connection import Connection


def publish(key: str, message: Any) -> asyncio.Future:
    """Send ``message`` (any JSON-encodable object) to every socket subscribed to ``key``.

    Yield or await the result to wait for delivery and to see errors (a
    message that cannot be JSON-encoded fails there and reaches no one).
    RuntimeError if no gateway serves the calling code (no `init_drizzle`).
    """
    return asyncio.ensure_future(current_gateway().publish(check_key(key), message))


def subscribe(key: str, socket: Connection) -> asyncio.Future:
    """Subscribe ``socket`` to ``key``; in effect when the result resolves."""
    return asyncio.ensure_future(socket.subscribe(check_key(key)))


def unsubscribe(key: str, socket: Connection) -> asyncio.Future:
    """Unsubscribe ``socket`` from ``key``."""
    return asyncio.ensure_future(socket.unsubscribe(check_key(key)))


class Subscriptions(Mapping[str, frozenset["Connection"]]):
    """A read-only, live view: subscription key -> the sockets of this process subscribed to it.

    The seed's ``subscriptions`` dict, without the dict: each lookup reads
    the gateway serving the calling code at that moment, so
    ``len(subscriptions["__all__"])`` grows as sockets open and shrinks as
    they close. Keys nobody listens to are absent. The view holds nothing
    itself and cannot be changed (no item assignment; the values are
    frozensets). A lookup walks the gateway's sessions, so it suits
    tests and diagnostics, not a hot path. RuntimeError if no gateway
    serves the calling code.
    """

    __slots__ = ()

    def __getitem__(self, key: str) -> frozenset[Connection]:
        # Served by Tornado, the shim's sessions run over its sockets (Connections).
        sockets = frozenset(cast("Connection", s.peer) for s in current_gateway().hub.sessions if key in s.channels)
        if not sockets:
            raise KeyError(key)
        return sockets

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys())

    def __len__(self) -> int:
        return len(self._keys())

    def __contains__(self, key: object) -> bool:
        return any(key in s.channels for s in current_gateway().hub.sessions)

    def _keys(self) -> set[str]:
        return {key for s in current_gateway().hub.sessions for key in s.channels}

    def __repr__(self) -> str:
        try:
            return f"<subscriptions {dict(self)!r}>"
        except RuntimeError:
            return "<subscriptions: no gateway serves this code>"


subscriptions = Subscriptions()
"""The subscriptions of the gateway serving the calling code (see `Subscriptions`)."""
