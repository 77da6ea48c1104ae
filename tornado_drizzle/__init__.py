"""Tornado Drizzle, served by drizzle_gateway: the seed's imports and wire dialect, unchanged.

``from tornado_drizzle.drizzle_web_socket import DrizzleWebSocket, DrizzleHandler``,
``from tornado_drizzle.conf import init_drizzle`` and
``from tornado_drizzle.subscriber import subscriptions, publish`` work as they
did; routing, delivery and connections are drizzle_gateway's. Nothing is kept
on the IOLoop or in module globals (see `tornado_drizzle.serving`).
"""

from .conf import init_drizzle
from .drizzle_web_socket import DrizzleHandler, DrizzleWebSocket
from .protocol import LegacyProtocol
from .subscriber import publish

__all__ = ["DrizzleHandler", "DrizzleWebSocket", "LegacyProtocol", "init_drizzle", "publish"]
