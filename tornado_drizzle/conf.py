"""``init_drizzle``: wire a Tornado application to its Tornado Drizzle handlers."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping

import tornado.web
from tornado.ioloop import IOLoop

from drizzle_gateway.brokers import Broker

from . import serving
from .gateway import SETTINGS_KEY, LegacyGateway
from .handler import DrizzleHandler

logger = logging.getLogger("drizzle_gateway")


def init_drizzle(
    application: tornado.web.Application,
    drizzle_handler_routes: Mapping[str, type[DrizzleHandler]],
    ioloop: IOLoop | None = None,
    *,
    broker: Broker | None = None,
    allowed_origins: Iterable[str] = (),
) -> LegacyGateway:
    """Serve ``drizzle_handler_routes`` ({resource name: handler class}) on the app's DrizzleWebSockets.

    The gateway is kept in ``application.settings`` (for the sockets) and
    bound to the caller's execution context for ``ioloop`` (for
    `tornado_drizzle.subscriber.publish` and ``subscriptions`` outside a
    socket; see `tornado_drizzle.serving`). Call it before or inside
    ``asyncio.run``, before or after ``app.listen``: the sockets always find
    their application's gateway, and so does code started from this context.
    ``broker`` and ``allowed_origins`` are drizzle_gateway's options; by
    default messages stay in this process and only same-host browser
    origins may connect.
    """
    gateway = LegacyGateway(drizzle_handler_routes, broker=broker, allowed_origins=allowed_origins)
    loop = ioloop.asyncio_loop if ioloop is not None else None  # type: ignore[attr-defined]
    previous = serving.bound()
    if previous is not None and previous.loop is loop:
        logger.warning("init_drizzle called again for the same event loop; publish() outside a socket now "
                       "reaches the newest gateway only")
    application.settings[SETTINGS_KEY] = gateway
    # The seed's attribute, kept for code that reads it (setattr: Application declares no such attribute).
    setattr(application, "drizzle_handler_routes", dict(drizzle_handler_routes))  # noqa: B010
    serving.bind(gateway, loop)
    return gateway
