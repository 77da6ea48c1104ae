"""The Gateway: the registry of resources and topics, the contract, publishing, the routes.

What runs while it serves (broker, fan-out, sessions) is its `Hub`, built once serving starts.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, cast

from tornado.web import Application, URLSpec
from tornado.websocket import WebSocketHandler

from .brokers import Broker, BrokerUnavailable, HistoryBroker, IdempotentBroker, MemoryBroker, Receipt
from .brokers.base import PresenceBroker
from .contract.introspection import describe
from .contract.resources import Resource, instance_refused
from .contract.topics import Topic, find_topic, prepare_publish, resolve
from .contract.visibility import builtins_only, visible_schema
from .runtime.auth import Authenticate, AuthThrottle
from .runtime.builtin_actions import BuiltinActions
from .runtime.hub import Hub
from .runtime.limits import Limits
from .transport import redaction
from .transport.browser_routes import browser_routes
from .transport.client_address import X_FORWARDED_FOR, TrustedProxies
from .transport.connection import Connection
from .transport.handshake import HandshakePolicy
from .transport.observability import health_routes, metrics_routes
from .transport.server import HTTPServer
from .wire.dialect import Dialect
from .wire.errors import ActionError, ErrorCode
from .wire.history import Page, Position

if TYPE_CHECKING:
    from .contract.resources import Action
    from .wire.dialect import Request

logger = logging.getLogger("drizzle_gateway")


class Gateway:
    """Serves resources and typed topics over one websocket route.

    ``broker`` moves published messages between processes (the in-memory
    broker by default). ``allowed_origins`` lists the browser origins
    allowed besides the gateway's own host; ``["*"]`` allows any.
    ``state`` is a dict for the application's own shared objects.
    `routes` always serves the browser client at ``/drizzle.js``; ``explorer``
    adds the schema explorer page at ``/_explorer``; ``extra_routes`` are
    more Tornado routes served alongside (an example's own pages);
    ``pages`` lists the paths of the HTML pages among them, which
    ``drizzle-gateway serve`` logs as URLs (by default, every extra route
    whose pattern takes no parameter, such as ``r"/()"``).

    ``allowed_hosts`` (like Django's ``ALLOWED_HOSTS``: ``"example.com"``,
    ``".example.com"`` for it and its subdomains, ``"*"``) refuses
    handshakes whose ``Host`` header names another host, which shuts DNS
    rebinding; None (the default) accepts any Host.

    ``authenticate`` (see `drizzle_gateway.runtime.auth`) makes every connection
    prove who it is; failed attempts are throttled per client address by
    ``auth_throttle`` (a default `AuthThrottle`; False: none). Until a
    connection is authenticated its ``__schema__`` holds only the built-in
    actions, unless ``public_schema`` is true. ``limits`` bounds what one
    connection may do (see `Limits`); ``hide_forbidden`` trims
    ``__schema__`` to what the connection's user may use.

    ``metrics`` (on by default) keeps Prometheus metrics in a registry of
    the gateway's own (`drizzle_gateway.runtime.metrics`) and serves them at
    ``/metrics`` among `routes`; False counts nothing. `routes` also serves
    the ``/healthz`` and ``/readyz`` probes
    (`drizzle_gateway.transport.observability`).

    Behind a reverse proxy, ``trusted_proxies`` lists the proxies'
    addresses or networks (``["10.0.0.0/8"]``): from those peers only, the
    client's address is read from ``forwarded_header`` (``X-Forwarded-For``,
    or ``Forwarded``), rightmost hop first, skipping trusted hops; the
    authentication throttle and the log lines use it (see
    `drizzle_gateway.transport.client_address`).

    Every gateway keeps credentials out of the log lines it causes (see
    `drizzle_gateway.transport.redaction`).
    """

    def __init__(
        self,
        resources: Iterable[type[Resource]] = (),
        topics: Iterable[Topic] = (),
        *,
        broker: Broker | None = None,
        title: str = "drizzle_gateway",
        allowed_origins: Iterable[str] = (),
        protocol: Dialect | None = None,
        explorer: bool = False,
        extra_routes: Iterable[tuple] = (),
        authenticate: Authenticate | None = None,
        limits: Limits | None = None,
        hide_forbidden: bool = False,
        pages: Iterable[str] | None = None,
        allowed_hosts: Iterable[str] | None = None,
        public_schema: bool = False,
        auth_throttle: AuthThrottle | bool | None = None,
        metrics: bool = True,
        trusted_proxies: Iterable[str] = (),
        forwarded_header: str = X_FORWARDED_FOR,
    ) -> None:
        self.title = title
        self.metrics = metrics
        self.explorer = explorer
        self.extra_routes = list(extra_routes)
        self._pages = list(pages) if pages is not None else None
        if auth_throttle is None or auth_throttle is True:
            auth_throttle = AuthThrottle()
        self._authenticate = authenticate
        self._auth_throttle: AuthThrottle | None = auth_throttle or None
        self._limits = limits if limits is not None else Limits()
        self._hide_forbidden = hide_forbidden
        self._public_schema = public_schema
        self._protocol = protocol or Dialect()
        self._broker: Broker = broker if broker is not None else MemoryBroker()
        self.handshake = HandshakePolicy(allowed_origins, allowed_hosts)
        self.trusted_proxies = TrustedProxies(trusted_proxies, forwarded_header)
        redaction.install()
        self.state: dict[str, Any] = {}
        self.resources: dict[str, type[Resource]] = {}
        self.topics: list[Topic] = []
        self._schema: dict | None = None
        self._hub: Hub | None = None
        for resource in resources:
            self.add_resource(resource)
        for topic in topics:
            self.add_topic(topic)

    # -- configuration, fixed at construction ------------------------------------

    @property
    def limits(self) -> Limits:
        """What one connection may do (see `Limits`)."""
        return self._limits

    @property
    def authenticate(self) -> Authenticate | None:
        """The hook every connection proves who it is to, or None."""
        return self._authenticate

    @property
    def auth_throttle(self) -> AuthThrottle | None:
        """The per-address throttle of failed authentications, or None."""
        return self._auth_throttle

    @property
    def protocol(self) -> Dialect:
        """The wire dialect the websocket route speaks."""
        return self._protocol

    @property
    def broker(self) -> Broker:
        """The broker that moves published messages between processes."""
        return self._broker

    @property
    def hide_forbidden(self) -> bool:
        """Whether ``__schema__`` is trimmed to what each user may use."""
        return self._hide_forbidden

    @property
    def public_schema(self) -> bool:
        """Whether ``__schema__`` shows everything before authentication."""
        return self._public_schema

    @property
    def allowed_origins(self) -> frozenset[str]:
        """The browser origins allowed besides the gateway's own host (see `HandshakePolicy`)."""
        return self.handshake.allowed_origins

    @property
    def allowed_hosts(self) -> frozenset[str] | None:
        """The ``Host`` headers accepted, or None for any (see `HandshakePolicy`)."""
        return self.handshake.allowed_hosts

    @property
    def hub(self) -> Hub:
        """The runtime (broker, fan-out, sessions...), built when serving starts and fixed from then on."""
        if self._hub is None:
            self._hub = Hub(self, self._broker, limits=self._limits, dialect=self._protocol,
                            authenticate=self._authenticate, auth_throttle=self._auth_throttle,
                            metrics=self.metrics)
        return self._hub

    # -- registry -------------------------------------------------------------

    def add_resource(self, resource: type[Resource]) -> None:
        """Serve ``resource`` under its ``name``."""
        if isinstance(resource, Resource):
            raise TypeError(instance_refused(type(resource)))
        if not (isinstance(resource, type) and issubclass(resource, Resource)):
            raise TypeError(f"a resource is a subclass of drizzle_gateway.Resource, not {resource!r}")
        if resource.name in self.resources:
            raise ValueError(f"two resources are named {resource.name!r}")
        self.resources[resource.name] = resource
        self._schema = None

    def add_topic(self, topic: Topic) -> None:
        """Declare ``topic``; only declared topics can be published or subscribed."""
        if any(t.pattern == topic.pattern for t in self.topics):
            raise ValueError(f"topic {topic.pattern!r} is declared twice")
        _check_broker_keeps(self.broker, topic)
        self.topics.append(topic)
        self._schema = None

    def find_topic(self, channel: str) -> tuple[Topic, dict[str, str]]:
        """The declared topic a concrete channel belongs to, and its params.

        Raises `ActionError` TOPIC_NOT_FOUND.
        """
        return find_topic(self.topics, channel)

    def resolve(self, topic: Topic | str, **params: str) -> tuple[Topic, str]:
        """The declared topic and concrete channel for a Topic, a pattern (with params) or a channel name.

        Raises `ActionError` TOPIC_NOT_FOUND.
        """
        return resolve(self.topics, topic, **params)

    def channel(self, topic: Topic | str, **params: str) -> str:
        """The concrete channel of ``topic`` (a Topic, a pattern or a channel name)."""
        return self.resolve(topic, **params)[1]

    def use_broker(self, broker: Broker) -> None:
        """Replace the broker before serving (``serve --redis`` does), or while no connection is open.

        A gateway that served already starts a new `Hub` over the new broker, as a restarted process would.
        """
        if self._hub is not None and self._hub.sessions:
            raise RuntimeError("cannot change the broker while connections are open")
        for topic in self.topics:
            _check_broker_keeps(broker, topic)
        self._broker = broker
        self._hub = None

    # -- publishing -----------------------------------------------------------

    async def publish(self, topic: Topic | str, payload: Any, *, idempotency_key: str | None = None,
                      **params: str) -> Receipt:
        """Dump ``payload`` with the topic's schema as a reply would, check the dump, then deliver it.

        ``topic`` is a `Topic`, its pattern (with ``params``) or a concrete
        channel name. Raises marshmallow's `ValidationError` when the
        payload does not fit, the topic is not declared or the
        ``idempotency_key`` is malformed; then nothing is delivered to anyone.

        With an ``idempotency_key`` (see `drizzle_gateway.wire.idempotency`),
        a repeat of the key on the same channel within the broker's window
        is delivered to nobody: the `Receipt` says ``duplicate`` and, on a
        topic with history, carries the original's position (when the broker
        knew it in time). A broker that cannot check keys publishes as if
        there were none.
        """
        declared, channel, data = prepare_publish(self.topics, topic, payload, idempotency_key, params)
        hub = self.hub
        broker = hub.broker
        if idempotency_key is not None and isinstance(broker, IdempotentBroker):
            receipt = await broker.publish_once(channel, data, idempotency_key, declared.history)
        else:
            if declared.history is None:
                await broker.publish(channel, data)
            else:
                await cast(HistoryBroker, broker).publish_logged(channel, data, declared.history)
            receipt = Receipt()
        if hub.metrics is not None and not receipt.duplicate:  # a duplicate was delivered to nobody
            hub.metrics.published(declared.pattern)
        return receipt

    async def history(self, channel: str, since: Position | None = None, limit: int | None = None) -> Page:
        """The retained events of a concrete ``channel`` whose topic has history (see `Page`).

        Raises `ActionError` TOPIC_NOT_FOUND, INVALID_DATA when the topic keeps no history,
        or UNAVAILABLE while the broker's store cannot be reached.
        """
        topic, _ = self.find_topic(channel)
        if topic.history is None:
            raise ActionError(ErrorCode.INVALID_DATA, f"topic {topic.pattern!r} keeps no history",
                              {"topic": ["this topic keeps no history"]})
        try:
            return await cast(HistoryBroker, self.hub.broker).history(channel, topic.history, since, limit)
        except BrokerUnavailable as exc:
            logger.warning("history of %s is unavailable: %s", channel, exc)
            raise ActionError(ErrorCode.UNAVAILABLE, "the history cannot be read right now; retry later") from None

    def find_action(self, request: Request) -> tuple[type[Resource], Action]:
        """The resource class and action a request names, or RESOURCE/ACTION_NOT_FOUND."""
        resource: type[Resource] | None
        if request.resource is None:
            resource = BuiltinActions
        else:
            resource = self.resources.get(request.resource)
            if resource is None:
                raise ActionError(ErrorCode.RESOURCE_NOT_FOUND, f"resource {request.resource!r} not found")
        found = resource.get_action(request.action)
        if found is None:
            where = f"resource {request.resource!r}" if request.resource is not None else "the built-in actions"
            raise ActionError(ErrorCode.ACTION_NOT_FOUND, f"action {request.action!r} not found in {where}")
        return resource, found

    # -- the contract ---------------------------------------------------------

    def schema(self) -> dict:
        """The ``__schema__`` document (built once, rebuilt after registry changes)."""
        if self._schema is None:
            self._schema = describe(self.title, self.resources.values(), self.topics, BuiltinActions)
        return self._schema

    def asyncapi(self, host: str = "localhost:8888", path: str = "/ws") -> dict:
        """The contract as an AsyncAPI 3.0 document, built from `schema` (see `drizzle_gateway.contract.asyncapi`).

        ``host`` and ``path`` say where the websocket is served.
        """
        from .contract.asyncapi import asyncapi_document

        return asyncapi_document(self.schema(), host=host, path=path)

    async def schema_for(self, user: Any) -> dict:
        """The ``__schema__`` document ``user`` sees.

        Only the built-ins before authentication (unless ``public_schema``);
        trimmed to what ``user`` may use when ``hide_forbidden``.
        """
        if user is None and self.authenticate is not None and not self.public_schema:
            return builtins_only(self.schema())
        if not self.hide_forbidden:
            return self.schema()
        return await visible_schema(self.schema(), self.resources, self.topics, user)

    # -- serving --------------------------------------------------------------

    @property
    def pages(self) -> list[str]:
        """URL paths of the pages ``extra_routes`` serve (given as ``pages``, or found in the routes)."""
        if self._pages is not None:
            return list(self._pages)
        return [page for page in map(fixed_path, self.extra_routes) if page is not None]

    def routes(self, path: str = "/ws", *, metrics: bool | None = None) -> list[tuple[str, type, dict]]:
        """Routes to give a ``tornado.web.Application``: the websocket, the browser files, the probes, ``extra_routes``.

        ``/metrics`` is among them while ``metrics`` (by default the
        gateway's own setting) is true: False leaves it to `metrics_routes`,
        served on a port of its own (``serve --metrics-port``).
        """
        metrics = self.metrics if metrics is None else metrics
        return [(path, Connection, {"gateway": self}), *browser_routes(path, explorer=self.explorer),
                *health_routes(self), *(self.metrics_routes() if metrics else ()), *self.extra_routes]

    def metrics_routes(self) -> list[tuple[str, type, dict]]:
        """``/metrics`` and the probes, for an application of their own (on another port)."""
        return [*metrics_routes(self), *health_routes(self)]

    def server_options(self) -> dict[str, Any]:
        """Keyword arguments for Tornado's ``HTTPServer`` that apply ``limits.handshake_timeout``.

        A connection that has not sent its request headers (and body) within
        that many seconds, or stays idle that long between requests, is closed.
        """
        timeout = self.limits.handshake_timeout
        return {} if timeout is None else {"idle_connection_timeout": timeout, "body_timeout": timeout}

    def http_server(self, app: Application | None = None, path: str = "/ws", **options: Any) -> HTTPServer:
        """An HTTP server for ``app`` (default: one serving `routes` at ``path``) with `server_options`.

        ``options`` go to Tornado's ``HTTPServer`` (``ssl_options`` for TLS)
        and win over `server_options`. Behind a reverse proxy, give the
        gateway ``trusted_proxies`` rather than ``xheaders=True``, which
        believes any peer's headers. The server pauses accepting
        rather than spinning when out of file descriptors (`drizzle_gateway.transport.server`).
        Start it with ``server.listen(port)`` or ``server.add_sockets(...)``.
        """
        if app is None:
            app = Application(self.routes(path))
        return HTTPServer(app, **{**self.server_options(), **options})

    async def close(self, timeout: float | None = None, *, restart: bool = False) -> None:
        """Shut down gracefully, then close the broker.

        New sockets are refused and new requests answered SHUTTING_DOWN;
        in-flight actions get up to ``timeout`` seconds (default
        ``limits.shutdown_timeout``) to finish and reply; then the rest are
        cancelled and every socket is closed with 1001 (going away), or with
        1012 (service restart) when ``restart`` (``drizzle-gateway serve``
        on SIGTERM: a drain for a deploy). Both tell clients to reconnect, to
        another instance if there is one.
        Finally the broker gets up to `hub.BROKER_CLOSE_WAIT` seconds to close,
        so the whole takes at most ``timeout`` + `hub.CLOSE_HANDSHAKE_WAIT` +
        `hub.BROKER_CLOSE_WAIT` seconds, whatever state the peers or the broker are in.
        """
        await self.hub.close(self._limits.shutdown_timeout if timeout is None else timeout, restart=restart)

def _check_broker_keeps(broker: Broker, topic: Topic) -> None:
    """Refuse a topic with history or presence on a broker that cannot keep it."""
    if topic.history is not None and not isinstance(broker, HistoryBroker):
        raise ValueError(f"topic {topic.pattern!r} has history, which {type(broker).__name__} cannot keep")
    if topic.presence is not None and not isinstance(broker, PresenceBroker):
        raise ValueError(f"topic {topic.pattern!r} has presence, which {type(broker).__name__} cannot keep")


def fixed_path(route: Any) -> str | None:
    """The one URL path a Tornado route serves, or None when it takes parameters or is a websocket."""
    if not isinstance(route, URLSpec | tuple | list):
        return None
    spec = route if isinstance(route, URLSpec) else URLSpec(*route[:2])
    if isinstance(spec.target, type) and issubclass(spec.target, WebSocketHandler):
        return None
    pattern = spec.regex.pattern.removesuffix("$")
    if spec.regex.groups != pattern.count("()"):
        return None
    try:
        path = spec.reverse(*[""] * spec.regex.groups)
    except (ValueError, AssertionError):
        return None
    return path if path is not None and spec.regex.fullmatch(path) else None
