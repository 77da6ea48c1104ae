"""The Gateway: registry of resources and topics, the broker, the routes."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from marshmallow import ValidationError
from tornado.httputil import HTTPServerRequest

from .brokers import Broker, MemoryBroker
from .builtin_actions import BuiltinActions, check
from .connection import Connection
from .errors import ActionError, ErrorCode
from .fanout import Fanout
from .introspection import describe
from .outbox import DEFAULT_SEND_QUEUE_BYTES, Flusher
from .protocol import Protocol, Request
from .resources import Resource
from .topics import Topic

if TYPE_CHECKING:
    from .resources import Action

logger = logging.getLogger("drizzle_gateway")


class Gateway:
    """Serves resources and typed topics over one websocket route.

    ``broker`` moves published messages between processes (the in-memory
    broker by default). ``allowed_origins`` lists the browser origins
    allowed besides the gateway's own host; ``["*"]`` allows any.
    ``state`` is a dict for the application's own shared objects.
    ``send_queue_bytes`` bounds what may wait for one peer; a connection
    whose queue grows past it is closed as a slow consumer (4008).
    """

    def __init__(
        self,
        resources: Iterable[type[Resource]] = (),
        topics: Iterable[Topic] = (),
        *,
        broker: Broker | None = None,
        title: str = "drizzle_gateway",
        allowed_origins: Iterable[str] = (),
        protocol: Protocol | None = None,
        send_queue_bytes: int = DEFAULT_SEND_QUEUE_BYTES,
    ) -> None:
        self.title = title
        self.state: dict[str, Any] = {}
        self.protocol = protocol or Protocol()
        self.broker: Broker = broker if broker is not None else MemoryBroker()
        self.fanout = Fanout(self.broker)
        self.send_queue_bytes = send_queue_bytes
        self.flusher = Flusher()
        self.connections: set[Connection] = set()
        self.allowed_origins = frozenset(allowed_origins)
        self.resources: dict[str, type[Resource]] = {}
        self.topics: list[Topic] = []
        self._schema: dict | None = None
        for resource in resources:
            self.add_resource(resource)
        for topic in topics:
            self.add_topic(topic)

    # -- registry -------------------------------------------------------------

    def add_resource(self, resource: type[Resource]) -> None:
        """Serve ``resource`` under its ``name``."""
        if resource.name in self.resources:
            raise ValueError(f"two resources are named {resource.name!r}")
        self.resources[resource.name] = resource
        self._schema = None

    def add_topic(self, topic: Topic) -> None:
        """Declare ``topic``; only declared topics can be published or subscribed."""
        if any(t.pattern == topic.pattern for t in self.topics):
            raise ValueError(f"topic {topic.pattern!r} is declared twice")
        self.topics.append(topic)
        self._schema = None

    def find_topic(self, channel: str) -> tuple[Topic, dict[str, str]]:
        """The declared topic a concrete channel belongs to, and its params.

        Raises `ActionError` TOPIC_NOT_FOUND.
        """
        for topic in self.topics:
            params = topic.match(channel)
            if params is not None:
                return topic, params
        raise ActionError(ErrorCode.TOPIC_NOT_FOUND, f"topic {channel!r} is not declared")

    def channel(self, topic: Topic | str, **params: str) -> str:
        """The concrete channel of ``topic`` (a Topic, a pattern or a channel name)."""
        if isinstance(topic, Topic):
            if topic not in self.topics:
                raise ActionError(ErrorCode.TOPIC_NOT_FOUND, f"topic {topic.pattern!r} is not declared")
            return topic.channel(**params)
        for declared in self.topics:
            if declared.pattern == topic:
                return declared.channel(**params)
        self.find_topic(topic)
        return topic

    # -- publishing -----------------------------------------------------------

    async def publish(self, topic: Topic | str, payload: Any, **params: str) -> None:
        """Validate ``payload`` against the topic's schema, then deliver it.

        ``topic`` is a `Topic`, its pattern (with ``params``) or a concrete
        channel name. Raises marshmallow's `ValidationError` when the
        payload does not fit or the topic is not declared; then nothing is
        delivered to anyone.
        """
        try:
            channel = self.channel(topic, **params)
        except ActionError as exc:
            raise ValidationError({"topic": [exc.message]}) from None
        declared, _ = self.find_topic(channel)
        data = declared.prepare(payload)
        await self.broker.publish(channel, data)

    # -- requests -------------------------------------------------------------

    def find_action(self, request: Request) -> tuple[type[Resource], Action]:
        """The resource class and action a request names, or RESOURCE/ACTION_NOT_FOUND."""
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

    async def call(self, connection: Connection, request: Request) -> Any:
        """Run one request: find, check fields, load input, run, dump output."""
        resource, act = self.find_action(request)
        selection = act.select(request.fields)
        data = act.load(request.data)
        if act.allow is not None:
            await check(act.allow, connection.user, {"data": data}, f"call {act.name!r}")
        result = await act.invoke(resource(connection, self), data, request)
        if selection is None:
            return result
        return selection.schema.dump(result)

    def schema(self) -> dict:
        """The ``__schema__`` document (built once, rebuilt after registry changes)."""
        if self._schema is None:
            self._schema = describe(self.title, self.resources.values(), self.topics, BuiltinActions)
        return self._schema

    # -- serving --------------------------------------------------------------

    def allows_origin(self, origin: str, request: HTTPServerRequest) -> bool:
        """True for same-host origins and those in ``allowed_origins``."""
        if "*" in self.allowed_origins or origin in self.allowed_origins:
            return True
        return urlparse(origin).netloc.lower() == request.headers.get("Host", "").lower()

    def routes(self, path: str = "/ws") -> list[tuple[str, type, dict]]:
        """Routes to give a ``tornado.web.Application``."""
        return [(path, Connection, {"gateway": self})]

    async def close(self) -> None:
        """Close every connection (1001, going away) and shut the broker down."""
        for connection in list(self.connections):
            connection.close(1001, "server shutting down")
        await self.fanout.drain()
        await self.broker.close()
        await asyncio.sleep(0)
