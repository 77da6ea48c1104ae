"""The gateway behind the shim: the seed's routes table served by drizzle_gateway."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from drizzle_gateway import ActionError, ErrorCode, Gateway
from drizzle_gateway.brokers import Broker

from .handler import DrizzleHandler
from .keys import AnyKey
from .protocol import LegacyProtocol

if TYPE_CHECKING:
    from drizzle_gateway.contract.resources import Action, Resource
    from drizzle_gateway.wire.dialect import Request

SETTINGS_KEY = "drizzle_gateway"
"""Where `init_drizzle` leaves the gateway: ``application.settings[SETTINGS_KEY]``."""

def route(name: str, handler: type[DrizzleHandler]) -> type[DrizzleHandler]:
    """``handler`` served as the resource ``name`` (a subclass, so one class may serve two names)."""
    if not (isinstance(handler, type) and issubclass(handler, DrizzleHandler)):
        raise TypeError(f"drizzle_handler_routes[{name!r}] must be a DrizzleHandler subclass, not {handler!r}")
    namespace = {"name": name, "__module__": handler.__module__, "__qualname__": handler.__qualname__,
                 "__doc__": handler.__doc__}
    return type(handler.__name__, (handler,), namespace)


class LegacyGateway(Gateway):
    """A `Gateway` answering in the seed's words when a resource or action is not found.

    Its sockets speak the legacy dialect by default; a `Connection` given
    ``protocol=Dialect()`` serves the same handlers and keys in
    ``drizzle.v1`` (built-in actions included), for clients migrating one
    at a time.
    """

    def __init__(
        self,
        routes: Mapping[str, type[DrizzleHandler]],
        *,
        broker: Broker | None = None,
        allowed_origins: Iterable[str] = (),
    ) -> None:
        super().__init__(
            [route(name, handler) for name, handler in routes.items()],
            [AnyKey()],
            broker=broker,
            title="tornado_drizzle",
            allowed_origins=allowed_origins,
            protocol=LegacyProtocol(),
        )

    def find_action(self, request: Request) -> tuple[type[Resource], Action]:
        """The handler and action a request names, or RESOURCE/ACTION_NOT_FOUND in the seed's words."""
        if request.resource is None:  # a drizzle.v1 built-in; the legacy envelope always names a resource
            return super().find_action(request)
        handler = self.resources.get(request.resource)
        if handler is None:
            raise ActionError(ErrorCode.RESOURCE_NOT_FOUND,
                              f"resource '{request.resource}' not found in drizzle_handler_routes")
        found = handler.get_action(request.action)
        if found is None:
            raise ActionError(ErrorCode.ACTION_NOT_FOUND,
                              f"action definition '{request.action}' not found in handler {handler.__name__}")
        return handler, found

