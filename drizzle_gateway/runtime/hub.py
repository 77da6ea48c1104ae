"""`Hub`: the runtime of one serving gateway.

The `Gateway` is the registry and the public entry (resources, topics, the
contract, lookups, publishing, routes). What runs while it serves lives
here: the broker and the fan-out over it, the flusher shared by the
connections, the action deadlines, the request runner, the live sessions and the
closing flag. The gateway builds its hub once, when serving starts (its
first connection, `TestClient` or publish); its limits, dialect and
authentication policy are fixed from then on. Sessions see the gateway only
through the hub's narrow `Registry`.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any, Protocol

from ..brokers.base import Broker, Monitored, PresenceBroker
from ..contract.resources import Host
from ..wire.dialect import CloseCode, Dialect
from ..wire.errors import ActionError, ErrorCode
from .auth import Authenticate, AuthThrottle, Credentials, identify, presents_credentials
from .busy_poll import BusyPoll
from .deadlines import Deadlines
from .fanout import Fanout
from .flusher import Flusher
from .heartbeat import Heartbeat
from .identity import Identity
from .limits import Limits
from .metrics import Metrics
from .presence import Presences
from .runner import Runner

if TYPE_CHECKING:
    from ..contract.resources import Action, Resource
    from ..contract.topics import Topic
    from ..wire.dialect import Request
    from ..wire.history import Page, Position
    from .session import Session

logger = logging.getLogger("drizzle_gateway")

CLOSE_HANDSHAKE_WAIT = 2.0
"""Seconds `Hub.close` waits for peers to answer its close frames."""

BROKER_CLOSE_WAIT = 5.0
"""Seconds `Hub.close` gives the broker to unsubscribe, flush and close."""

SHUTDOWN: tuple[int, str] = (CloseCode.GOING_AWAY, "server shutting down")
"""The close code and reason of the sockets `Hub.close` ends for a shutdown."""

RESTART: tuple[int, str] = (CloseCode.SERVICE_RESTART, "server restarting")
"""The close code and reason of the sockets `Hub.close` ends with ``restart`` (a drain for a deploy)."""


class Registry(Host, Protocol):
    """What the runtime asks of the gateway: its lookups, and what resources and built-in actions use."""

    def find_action(self, request: Request) -> tuple[type[Resource], Action]:
        """The resource class and action a request names; RESOURCE_ or ACTION_NOT_FOUND."""

    def find_topic(self, channel: str) -> tuple[Topic, dict[str, str]]:
        """The declared topic of a concrete channel, and its params; TOPIC_NOT_FOUND."""

    async def schema_for(self, user: Any) -> dict[str, Any]:
        """The ``__schema__`` document ``user`` sees."""

    async def history(self, channel: str, since: Position | None = None, limit: int | None = None) -> Page:
        """The retained events of ``channel``."""


class Hub:
    """What a serving gateway runs: broker, fan-out, presence, flusher, deadlines, heartbeat, runner, sessions.

    ``busy_poll`` (`BusyPoll`, None when ``limits.busy_poll`` is off) is touched by each message a connection reads.

    With ``metrics`` it keeps its Prometheus series (`Metrics`, a registry of its own) in ``metrics``;
    without, ``metrics`` is None and nothing is counted.
    """

    def __init__(self, registry: Registry, broker: Broker, *, limits: Limits, dialect: Dialect,
                 authenticate: Authenticate | None = None, auth_throttle: AuthThrottle | None = None,
                 metrics: bool = False) -> None:
        self.registry = registry
        self.broker = broker
        self.limits = limits
        self.dialect = dialect
        self.authenticate = authenticate
        self.auth_throttle = auth_throttle
        self.metrics = Metrics(registry, self) if metrics else None
        self.fanout = Fanout(broker, self.metrics.deliveries if self.metrics is not None else None)
        self.pacing_clock = self.fanout.charged_clock  # one bound method, shared by every session's `Pacer`
        self.presence = Presences(broker.presence if isinstance(broker, PresenceBroker) else None, limits)
        self.flusher = Flusher()
        self.deadlines: Deadlines = Deadlines(limits.action_timeout)
        self.starter = Runner(self.flusher)
        interval, timeout = limits.ping_interval, limits.ping_timeout
        self.heartbeat = Heartbeat(interval, interval if timeout is None else timeout) if interval else None
        self.busy_poll = BusyPoll(limits.busy_poll) if limits.busy_poll else None
        self.closing = False
        self.farewell: tuple[int, str] = SHUTDOWN  # the close code and reason of the sockets it ends
        self._sessions: set[Session] = set()

    @property
    def sessions(self) -> frozenset[Session]:
        """The sessions open now."""
        return frozenset(self._sessions)

    @property
    def session_count(self) -> int:
        """How many sessions are open now."""
        return len(self._sessions)

    def ready(self) -> bool:
        """Whether to take new connections: not closing, and the broker's backend reachable.

        A broker that connects lazily is asked to connect, so the first probe starts it.
        """
        if self.closing:
            return False
        broker = self.broker
        if isinstance(broker, Monitored):
            broker.connect()
            return broker.connected
        return True

    def join(self, session: Session) -> None:
        """Count ``session`` among the live ones (it started)."""
        self._sessions.add(session)

    def leave(self, session: Session) -> None:
        """``session`` ended."""
        self._sessions.discard(session)

    async def identify(self, credentials: Credentials) -> Identity:
        """The `Identity` the ``authenticate`` hook finds, through ``auth_throttle``.

        Raises `ActionError` UNAUTHENTICATED, or RATE_LIMITED when the
        client's address has failed too often.
        """
        if self.authenticate is None:
            raise ActionError(ErrorCode.UNAUTHENTICATED, "this gateway does not authenticate")
        try:
            if self.auth_throttle is None:
                return await identify(self.authenticate, credentials)
            return await self.auth_throttle.identify(self.authenticate, credentials)
        except ActionError as exc:
            if self.metrics is not None and presents_credentials(credentials):
                self.metrics.auth_failed(exc.code)
            raise

    async def close(self, timeout: float | None, *, restart: bool = False) -> None:
        """Shut down: refuse new work, give running actions ``timeout`` seconds, close every peer, then the broker.

        Peers are closed with 1001 (`SHUTDOWN`), or with 1012 (`RESTART`)
        when ``restart``: both tell clients to reconnect, to another
        instance if there is one. Takes at most ``timeout`` +
        `CLOSE_HANDSHAKE_WAIT` + `BROKER_CLOSE_WAIT` seconds.
        Streaming replies end at once, with SHUTTING_DOWN after the items already sent.
        """
        self.farewell = RESTART if restart else SHUTDOWN
        self.closing = True
        for session in self._sessions:  # a stream may never run out: its generator is closed now
            session.shut_streams()
        await asyncio.sleep(0)  # requests read in this turn start on the next: their tasks are waited for too
        in_flight = [task for session in self._sessions for task in session.tasks]
        if in_flight:
            _, late = await asyncio.wait(in_flight, timeout=timeout)
            if late:
                logger.warning("shutdown: cancelling %d actions still running after %ss", len(late), timeout)
                for task in late:
                    task.cancel()
        await asyncio.sleep(0)  # let the last replies be written
        for session in list(self._sessions):
            session.close(*self.farewell)
        loop = asyncio.get_running_loop()
        goodbye = loop.time() + CLOSE_HANDSHAKE_WAIT
        while self._sessions and loop.time() < goodbye:  # let peers answer the close frames
            await asyncio.sleep(0.01)
        try:
            async with asyncio.timeout(BROKER_CLOSE_WAIT):
                await self.fanout.drain()
                await self.presence.drain()
                await self.broker.close()
        except TimeoutError:
            logger.warning("shutdown: the broker did not close within %ss", BROKER_CLOSE_WAIT)
        await asyncio.sleep(0)
