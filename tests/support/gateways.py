"""Building a gateway with the options a test needs, from an example's: configuration is given at construction.

A `Gateway`'s configuration (``limits``, ``authenticate``, ``explorer``...)
is passed to its constructor, never assigned afterwards; `rebuilt` makes a
new gateway serving what an example's gateway serves, with other options;
`listening` serves a second gateway beside the test's own.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterable
from typing import Any

from tornado.httpserver import HTTPServer
from tornado.testing import bind_unused_port
from tornado.web import Application

from drizzle_gateway import Gateway, Resource, Topic


def rebuilt(example: Gateway, *, resources: Iterable[type[Resource]] = (), topics: Iterable[Topic] = (),
            kind: type[Gateway] = Gateway, **options: Any) -> Gateway:
    """A new gateway with ``example``'s resources, topics, title, extra routes and state, plus ``resources``
    and ``topics``, built with ``options`` (keyword arguments of `Gateway`, which win over the example's).

    ``kind`` is the class built: a subclass of `Gateway` a test overrides a method of.
    """
    gateway = kind([*example.resources.values(), *resources], [*example.topics, *topics],
                   **{"title": example.title, "extra_routes": list(example.extra_routes), **options})
    gateway.state.update(example.state)
    return gateway


@contextlib.asynccontextmanager
async def listening(gateway: Gateway) -> AsyncIterator[str]:
    """Serve ``gateway``'s routes on a free loopback port while the block runs; its websocket URL."""
    server = HTTPServer(Application(gateway.routes()))
    sock, port = bind_unused_port()
    server.add_sockets([sock])
    try:
        yield f"ws://127.0.0.1:{port}/ws"
    finally:
        server.stop()
        await server.close_all_connections()
