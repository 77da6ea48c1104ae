"""Authentication: who is on the other end of a connection.

A gateway built with ``authenticate=fn`` calls ``fn(credentials)`` once
when a socket opens (with the handshake's headers, cookies and query) and
again for each ``__auth__`` request (with the token the client sent, for
browsers that cannot set headers). ``fn`` may be async; it returns the
user object, or returns None / raises to refuse.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tornado.httputil import HTTPServerRequest

from .errors import ActionError, ErrorCode

logger = logging.getLogger("drizzle_gateway")

OPEN_ACTIONS = frozenset({"__auth__", "__ping__", "__schema__"})
"""Built-in actions a connection may use before it is authenticated."""


@dataclass(frozen=True)
class Credentials:
    """What ``authenticate`` sees: the websocket handshake and, from ``__auth__``, a token."""

    request: HTTPServerRequest
    token: str | None = None

    @property
    def headers(self) -> Any:
        """The handshake's HTTP headers (case-insensitive mapping)."""
        return self.request.headers

    @property
    def cookies(self) -> dict[str, str]:
        """The handshake's cookies, name to value."""
        return {name: morsel.value for name, morsel in self.request.cookies.items()}

    @property
    def query(self) -> dict[str, str]:
        """The handshake URL's query arguments, name to (last) value."""
        return {name: values[-1].decode("utf-8", "replace") for name, values in self.request.query_arguments.items()}


Authenticate = Callable[[Credentials], Any]
"""``fn(credentials) -> user | None``, plain or async."""


async def identify(authenticate: Authenticate, credentials: Credentials) -> Any:
    """The user ``authenticate`` finds in ``credentials``; raises UNAUTHENTICATED when refused.

    An `ActionError` raised by the hook reaches the client as UNAUTHENTICATED
    with the hook's message; any other exception is a plain refusal.
    """
    try:
        user = authenticate(credentials)
        if inspect.isawaitable(user):
            user = await user
    except ActionError as exc:
        raise ActionError(ErrorCode.UNAUTHENTICATED, exc.message, exc.details) from None
    except Exception as exc:
        logger.info("authentication refused by %r", exc)
        user = None
    if user is None:
        raise ActionError(ErrorCode.UNAUTHENTICATED, "credentials refused")
    return user


def requires_user(action: str, resource: str | None) -> bool:
    """True unless the request is one of the built-ins open before authentication."""
    return resource is not None or action not in OPEN_ACTIONS
