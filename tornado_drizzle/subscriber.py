"""Publishing and subscribing by key, as the seed's ``subscriber`` module offered.

There is no global queue: each call goes straight to the gateway that
`init_drizzle` attached to the current IOLoop.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from .gateway import gateway_of
from .keys import check_key

if TYPE_CHECKING:
    from drizzle_gateway.connection import Connection


def publish(key: str, message: Any) -> asyncio.Future:
    """Send ``message`` (any JSON-encodable object) to every socket subscribed to ``key``.

    Yield or await the result to wait for delivery and to see errors (a
    message that cannot be JSON-encoded fails there and reaches no one).
    """
    return asyncio.ensure_future(gateway_of().publish(check_key(key), message))


def subscribe(key: str, socket: Connection) -> asyncio.Future:
    """Subscribe ``socket`` to ``key``; in effect when the result resolves."""
    return asyncio.ensure_future(socket.subscribe(check_key(key)))


def unsubscribe(key: str, socket: Connection) -> asyncio.Future:
    """Unsubscribe ``socket`` from ``key``."""
    return asyncio.ensure_future(socket.unsubscribe(check_key(key)))
