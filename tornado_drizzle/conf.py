"""``init_drizzle``: wire a Tornado application to its Tornado Drizzle handlers."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping

import tornado.web
from tornado.ioloop import IOLoop

from drizzle_gateway.brokers import Broker

from .gateway import IOLOOP_ATTRIBUTE, SETTINGS_KEY, LegacyGateway
from .handler import DrizzleHandler

logger = logging.getLogger("drizzle_gateway")


def init_drizzle(
    application: tornado.web.Application,
    drizzle_handler_routes: Mapping[str, type[DrizzleHandler]],
    ioloop: IOLoop,
    *,
    broker: Broker | None = None,
    allowed_origins: Iterable[str] = (),
) -> LegacyGateway:
    """Serve ``drizzle_handler_routes`` ({resource name: handler class}) on the app's DrizzleWebSockets.

    The gateway is kept in ``application.settings`` (for the sockets) and
    on ``ioloop`` (for `tornado_drizzle.subscriber.publish`). ``broker``
    and ``allowed_origins`` are drizzle_gateway's options; by default
    messages stay in this process and only same-host browser origins may
    connect.
    """
    gateway = LegacyGateway(drizzle_handler_routes, broker=broker, allowed_origins=allowed_origins)
    if getattr(ioloop, IOLOOP_ATTRIBUTE, None) is not None:
        logger.warning("init_drizzle called again on the same IOLoop; publish() now reaches the newest gateway only")
    application.settings[SETTINGS_KEY] = gateway
    application.drizzle_handler_routes = dict(drizzle_handler_routes)
    setattr(ioloop, IOLOOP_ATTRIBUTE, gateway)
    return gateway
