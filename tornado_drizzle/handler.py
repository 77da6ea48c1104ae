"""DrizzleHandler: a Tornado Drizzle handler class served as a drizzle_gateway `Resource`."""

from __future__ import annotations

import asyncio
import inspect
from typing import TYPE_CHECKING, Any, cast

from drizzle_gateway.contract.resources import Action, Resource

from . import serving
from .keys import check_key

if TYPE_CHECKING:
    from drizzle_gateway.gateway import Gateway
    from drizzle_gateway.runtime.session import Session
    from drizzle_gateway.wire.dialect import Request

NEVER_ACTIONS = frozenset({"subscribe"})
"""Public names of the seed's handler API that a client may never call."""


class LegacyAction(Action):
    """A handler method called the seed's way: with the whole request dict as ``message``."""

    async def invoke(self, instance: Resource, data: Any, request: Request) -> Any:
        """Call the method with ``request.raw``; plain, ``async`` and ``@gen.coroutine`` methods all work.

        The request's context is bound to the gateway serving ``instance``, so
        ``publish()`` in it (and in the tasks it starts) reaches that gateway,
        whichever kind of connection sent the request.
        """
        serving.bind(cast("Gateway", instance.gateway))
        result = getattr(instance, self.name)(request.raw)
        if inspect.isawaitable(result):
            result = await result
        return result


def _is_legacy_action(cls: type, name: str) -> bool:
    """True for public methods a subclass defines; never for the base API or plain attributes."""
    if name.startswith("_") or name in NEVER_ACTIONS:
        return False
    found = inspect.getattr_static(cls, name)
    if found is inspect.getattr_static(DrizzleHandler, name, None) or hasattr(found, "__drizzle_action__"):
        return False
    return inspect.isfunction(found) or isinstance(found, classmethod)


class DrizzleHandler(Resource):
    """Base class of Tornado Drizzle handlers; every public method is an action.

    A method is called with the request dict (``resource``, ``action``,
    ``request_id``, ``data``) and may return (or resolve to) any
    JSON-encodable value. ``self.client_socket`` is the socket, as in
    the seed; ``self.session`` and ``self.gateway`` are there too.
    """

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        names = [name for name in dir(cls) if _is_legacy_action(cls, name)]
        legacy = {name: LegacyAction(getattr(cls, name), name=name) for name in names}
        cls.actions = {**legacy, **cls.actions}

    def __init__(self, session: Session, gateway: Gateway | None = None) -> None:
        super().__init__(session, gateway if gateway is not None else session.hub.registry)
        self.client_socket = session.peer

    def subscribe(self, key: str) -> asyncio.Future:  # type: ignore[override]
        """Send this socket what is published to ``key`` from now on; yield the result to wait.

        The subscription is in effect when the returned future resolves. A
        key that is not a non-empty string is refused at once with a
        VALIDATION_ERROR reply to this client only.
        """
        return asyncio.ensure_future(self.connection.subscribe(check_key(key)))

    def unsubscribe(self, key: str) -> asyncio.Future:  # type: ignore[override]
        """Stop sending this socket what is published to ``key``; resolves to False if it was not subscribed."""
        return asyncio.ensure_future(self.connection.unsubscribe(check_key(key)))
