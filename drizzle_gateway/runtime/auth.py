"""Authentication: who is on the other end of a connection.

A gateway built with ``authenticate=fn`` calls ``fn(credentials)`` once
when a socket opens (with the handshake's headers, cookies and query) and
again for each ``__auth__`` request (with the token the client sent, for
browsers that cannot set headers). ``fn`` may be async; it returns the
user object or an `Identity` (the user, until when), or returns None /
raises to refuse.

Failed attempts are throttled per client address across connections by the
gateway's `AuthThrottle`, so reconnecting does not buy more guesses.
"""

from __future__ import annotations

import inspect
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tornado.httputil import HTTPServerRequest

from ..wire.errors import ActionError, ErrorCode
from .identity import Identity, identity_of

logger = logging.getLogger("drizzle_gateway")

OPEN_ACTIONS = frozenset({"__auth__", "__ping__", "__schema__"})
"""Built-in actions a connection may use before it is authenticated."""


@dataclass(frozen=True)
class Credentials:
    """What ``authenticate`` sees: the websocket handshake and, from ``__auth__``, a token."""

    request: HTTPServerRequest
    token: str | None = None
    address: str | None = None
    """The client's address as the transport found it (behind trusted proxies, the one they
    forwarded); None: the handshake's ``remote_ip``."""

    @property
    def client_address(self) -> str:
        """The address failed attempts are counted against: ``address``, else ``request.remote_ip``."""
        return self.address if self.address is not None else (self.request.remote_ip or "")

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
"""``fn(credentials) -> user | Identity | None``, plain or async."""

TOKEN_REFUSED = "the token was refused"
"""The text of an ``__auth__`` whose token the hook refused (returned None or raised)."""

HANDSHAKE_REFUSED = "the handshake's credentials were refused"
"""The text of a handshake whose credentials (query, ``Authorization``, cookies) the hook refused."""

EXPIRED = "the token has expired"
"""The text of credentials whose `Identity` had ended already."""


async def identify(authenticate: Authenticate, credentials: Credentials) -> Identity:
    """The `Identity` ``authenticate`` finds in ``credentials``; raises UNAUTHENTICATED when refused.

    An `ActionError` raised by the hook reaches the client as UNAUTHENTICATED
    with the hook's message; any other exception, or None, is a plain
    refusal (`TOKEN_REFUSED`, or `HANDSHAKE_REFUSED` without a token). An
    identity that has ended already is refused too (`EXPIRED`).
    """
    try:
        found = authenticate(credentials)
        if inspect.isawaitable(found):
            found = await found
        identity = None if found is None else identity_of(found)
    except ActionError as exc:
        raise ActionError(ErrorCode.UNAUTHENTICATED, exc.message, exc.details) from None
    except Exception as exc:
        logger.info("authentication refused: the hook raised %s", type(exc).__name__)  # its text may hold the token
        identity = None
    if identity is None:
        raise ActionError(ErrorCode.UNAUTHENTICATED, HANDSHAKE_REFUSED if credentials.token is None else TOKEN_REFUSED)
    remaining = identity.remaining()
    if remaining is not None and remaining <= 0:
        raise ActionError(ErrorCode.UNAUTHENTICATED, EXPIRED)
    return identity


def requires_user(action: str, resource: str | None) -> bool:
    """True unless the request is one of the built-ins open before authentication."""
    return resource is not None or action not in OPEN_ACTIONS


class AuthThrottle:
    """Authentication attempts per client address, across all its connections.

    Each attempt takes a token from its address's bucket before the
    ``authenticate`` hook runs, so attempts still running count too: an
    address may have ``burst`` attempts under way or failed in a row; after
    that it gets one more every ``1 / rate`` seconds (a token bucket per
    address). A refusal keeps its token; a success gives it back (it costs
    nothing, and does not refill the bucket beyond that). While an address
    has no token left, the hook is not called: ``__auth__`` is answered
    ``RATE_LIMITED`` with ``details.retry_after`` and a handshake gets HTTP
    429 with ``Retry-After``.

    Only attempts that carry something to check are throttled and counted:
    an ``__auth__`` token, or a handshake with a query string, an
    ``Authorization`` header or cookies. A handshake without any of these
    (a browser that sends ``__auth__`` next) is neither. At most
    ``max_addresses`` addresses are remembered; the ones whose bucket is
    full again are forgotten first. ``clock`` gives the time in seconds
    (``time.monotonic``).

    The address is the credentials' `Credentials.client_address`: the
    connection's, which behind a reverse proxy is the client's only when the
    gateway trusts that proxy (``Gateway(trusted_proxies=[...])``, see
    `drizzle_gateway.transport.client_address`).
    """

    def __init__(self, rate: float = 0.2, burst: int = 10, max_addresses: int = 100_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be positive and burst at least 1")
        self.rate = rate
        self.burst = float(burst)
        self.max_addresses = max_addresses
        self.clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}

    def _tokens(self, address: str, now: float) -> float:
        tokens, stamp = self._buckets.get(address, (self.burst, now))
        return min(self.burst, tokens + (now - stamp) * self.rate)

    def _store(self, address: str, tokens: float, now: float) -> None:
        self._buckets.pop(address, None)  # the most recently used address goes last
        self._buckets[address] = (tokens, now)
        if len(self._buckets) > self.max_addresses:
            self._forget(now)

    def retry_after(self, address: str) -> float:
        """0.0 when ``address`` may try now, else the seconds until it may."""
        tokens = self._tokens(address, self.clock())
        return 0.0 if tokens >= 1.0 else (1.0 - tokens) / self.rate

    def take(self, address: str) -> float:
        """Take one attempt for ``address``: 0.0 if it had one, else the seconds until it will (nothing taken)."""
        now = self.clock()
        tokens = self._tokens(address, now)
        if tokens < 1.0:
            return (1.0 - tokens) / self.rate
        self._store(address, tokens - 1.0, now)
        return 0.0

    def give_back(self, address: str) -> None:
        """Return the attempt `take` took for ``address`` (the attempt succeeded)."""
        now = self.clock()
        self._store(address, min(self.burst, self._tokens(address, now) + 1.0), now)

    def _forget(self, now: float) -> None:
        for address in [a for a in self._buckets if self._tokens(a, now) >= self.burst]:
            del self._buckets[address]
        while len(self._buckets) > self.max_addresses:  # still too many: the least recently used go
            del self._buckets[next(iter(self._buckets))]

    async def identify(self, authenticate: Authenticate, credentials: Credentials) -> Identity:
        """`identify`, if the client's address has an attempt left (taken before the hook runs).

        Raises RATE_LIMITED (hook not called) or UNAUTHENTICATED.
        """
        if not presents_credentials(credentials):
            return await identify(authenticate, credentials)
        address = credentials.client_address
        wait = self.take(address)
        if wait:
            raise ActionError(ErrorCode.RATE_LIMITED, "too many failed authentication attempts from this address",
                              {"retry_after": round(wait, 3)})
        identity = await identify(authenticate, credentials)  # a refusal (or a cancel) keeps the token taken
        self.give_back(address)
        return identity


def presents_credentials(credentials: Credentials) -> bool:
    """True when an attempt carried something to check (a token, a query, Authorization or cookies)."""
    if credentials.token is not None:
        return True
    request = credentials.request
    return bool(request.query or "Authorization" in request.headers or "Cookie" in request.headers)
