"""Which gateway serves the code running now: how ``publish()`` and ``subscriptions`` find it.

The seed kept one global subscriber table; the shim's first version hung the
gateway on the IOLoop, which is the wrong object when ``init_drizzle`` runs
before ``asyncio.run`` (that loop never runs; ``asyncio.run`` makes another).
Here the gateway travels with the *execution context* instead, through one
`contextvars.ContextVar`, the mechanism asyncio itself uses to carry values
into tasks and callbacks (and `decimal` its precision). Nothing is kept on
the IOLoop, on the event loop or in a module global: the variable is only a
key, and each context holds its own value.

- `init_drizzle` binds its gateway in the caller's context, together with
  the loop it was given. Everything started afterwards from that context
  inherits the binding: ``IOLoop.current().start()`` as in the seed's sample,
  ``asyncio.run(main())`` (which copies the caller's context into its main
  task), tasks and callbacks scheduled from there.
- Each `DrizzleWebSocket` binds its own gateway in its connection's context,
  and each handler action in its request's, so whatever a socket runs (its
  actions, the tasks they start) reaches the gateway of the application that
  accepted it, whichever order ``init_drizzle``, ``app.listen`` and
  ``asyncio.run`` came in.

A binding made by ``init_drizzle`` holds while the loop it was given is the
running loop, or has not run at all (``init_drizzle`` came before
``asyncio.run``, whose new loop then takes its place). Once that loop is
closed, or while it runs in another thread, the binding is stale and lookups
fail with RuntimeError rather than reach a gateway no socket can use.
"""

from __future__ import annotations

import asyncio
import contextvars
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from drizzle_gateway import Gateway

NOT_INITIALISED = ("no Tornado Drizzle gateway serves this code; call init_drizzle(app, routes, ioloop) first "
                   "(in the context that starts the event loop) or publish from a DrizzleWebSocket's action")


class Serving(NamedTuple):
    """A gateway, and the event loop it was bound for (None: whichever loop runs the context)."""

    gateway: Gateway
    loop: asyncio.AbstractEventLoop | None

    def serves(self, running: asyncio.AbstractEventLoop | None) -> bool:
        """True if this binding applies under the ``running`` loop (None: no loop is running)."""
        if self.loop is None or self.loop is running:
            return True
        return not (self.loop.is_closed() or self.loop.is_running())  # a loop that never ran gave way to this one


_serving: contextvars.ContextVar[Serving] = contextvars.ContextVar("tornado_drizzle.serving")


def running_loop() -> asyncio.AbstractEventLoop | None:
    """The event loop running this code, or None outside one."""
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def bound() -> Serving | None:
    """The binding of the current context that applies under the running loop, if any."""
    serving = _serving.get(None)
    return serving if serving is not None and serving.serves(running_loop()) else None


def bind(gateway: Gateway, loop: asyncio.AbstractEventLoop | None = None) -> None:
    """Make ``gateway`` the one this context (and all it starts from now on) publishes through."""
    _serving.set(Serving(gateway, loop))


def current_gateway() -> Gateway:
    """The gateway serving the code running now; RuntimeError if `init_drizzle` set none up for it."""
    serving = bound()
    if serving is None:
        raise RuntimeError(NOT_INITIALISED)
    return serving.gateway
