"""Resources and their actions, described by marshmallow schemas."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from marshmallow import Schema, ValidationError

from ..schema.compiled import compile_schema
from ..schema.selection import SchemaLike, Selection, Selector, as_schema
from ..wire.errors import ActionError, ErrorCode
from .permissions import Permission

if TYPE_CHECKING:
    from ..wire.dialect import Request
    from .topics import Topic


class Caller(Protocol):
    """The connection that sent a request, as its resource sees it (a `Session`)."""

    user: Any

    async def subscribe(self, channel: str, fields: list[str] | tuple[str, ...] | None = None) -> str:
        """Listen to a concrete channel; in effect when this returns."""

    async def unsubscribe(self, channel: str) -> bool:
        """Stop listening to a channel; False if it was not listened to."""


class Host(Protocol):
    """The gateway serving a request, as its resource sees it (a `drizzle_gateway.Gateway`)."""

    state: dict[str, Any]
    """The application's own shared objects."""

    async def publish(self, topic: Topic | str, payload: Any, **params: str) -> None:
        """Publish ``payload`` to a topic, checked against its schema first."""

    def channel(self, topic: Topic | str, **params: str) -> str:
        """The concrete channel of ``topic``."""


class Action:
    """One callable action: its function, input and output schemas, and docs."""

    def __init__(
        self,
        func: Callable,
        name: str | None = None,
        input: SchemaLike | None = None,
        output: SchemaLike | None = None,
        allow: Permission | None = None,
    ) -> None:
        self.func = func
        self.name = name or func.__name__
        self.input: Schema | None = as_schema(input) if input is not None else None
        self.output: Selector | None = Selector(output) if output is not None else None
        self.allow = allow
        self.doc = inspect.getdoc(func) or ""
        self.stream = inspect.isasyncgenfunction(func)
        """An ``async def`` that yields: it answers with a stream of items, each dumped by ``output``."""

    def load(self, data: dict | list | None) -> Any:
        """Validate and load the request's ``data``; INVALID_DATA when it does not fit.

        With an input schema, marshmallow decides what ``data`` may be (an
        object, or an array for one declared ``many=True``); no ``data`` is an
        empty object. An action without one takes an object (or nothing):
        an array is VALIDATION_ERROR.
        """
        if self.input is None:
            if isinstance(data, list):
                raise ActionError(ErrorCode.VALIDATION_ERROR, "'data' must be a JSON object")
            return data
        try:
            return compile_schema(self.input).load({} if data is None else data)
        except ValidationError as exc:
            raise ActionError(ErrorCode.INVALID_DATA, "data does not match the action's input schema",
                              exc.messages) from None

    def select(self, fields: tuple[str, ...] | None) -> Selection | None:
        """The output selection for ``fields``; INVALID_FIELDS when they do not exist."""
        if self.output is None:
            if fields is not None:
                raise ActionError(ErrorCode.INVALID_FIELDS, "this action has no output schema to select from",
                                  {"fields": list(fields)})
            return None
        return self.output.select(fields)

    async def invoke(self, instance: Resource, data: Any, request: Request) -> Any:
        """Call the action; works for ``async def``, plain and ``@gen.coroutine`` functions."""
        result = self.func(instance, data)
        if inspect.isawaitable(result):
            result = await result
        return result


def action(
    input: SchemaLike | None = None,
    output: SchemaLike | None = None,
    *,
    name: str | None = None,
    allow: Permission | None = None,
) -> Callable[[Callable], Callable]:
    """Declare a resource method callable over the wire.

    ``input`` validates and loads the request's ``data``; ``output`` dumps
    the return value and is what ``fields`` select from. Only decorated
    methods are ever reachable. An ``async def`` that yields is a
    streaming action: each item it yields is dumped by ``output`` and sent
    as it comes (see `drizzle_gateway.runtime.streams`).
    """

    def decorate(func: Callable) -> Callable:
        # An attribute of the function (Resource collects them); setattr, as Callable declares no such attribute.
        setattr(func, "__drizzle_action__", Action(func, name=name, input=input, output=output, allow=allow))  # noqa: B010
        return func

    return decorate


class Resource:
    """Base class of resources: subclass it, set ``name``, decorate actions.

    One instance serves one request; ``self.session`` (the connection's
    `Session`, also ``self.connection``), ``self.gateway`` and ``self.user``
    are set on it.
    """

    name: ClassVar[str] = ""
    actions: ClassVar[dict[str, Action]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        found: dict[str, Action] = {}
        for attribute in dir(cls):
            spec = getattr(getattr(cls, attribute, None), "__drizzle_action__", None)
            if isinstance(spec, Action):
                found[spec.name] = spec
        cls.actions = found
        if not cls.name:
            cls.name = cls.__name__.lower()

    def __init__(self, session: Caller, gateway: Host) -> None:
        self.session = session
        self.gateway = gateway

    @property
    def connection(self) -> Caller:
        """The session of the connection that sent the request (the name earlier versions used)."""
        return self.session

    @property
    def user(self) -> Any | None:
        """The authenticated user of this connection, or None."""
        return self.session.user

    @classmethod
    def get_action(cls, name: str) -> Action | None:
        """The declared action called ``name``, or None."""
        return cls.actions.get(name)

    async def publish(self, topic: Topic | str, payload: Any, **params: str) -> None:
        """Publish ``payload`` to a topic: what a reply through its schema takes (checked before delivery)."""
        await self.gateway.publish(topic, payload, **params)

    async def subscribe(self, topic: Topic | str, fields: list[str] | None = None, **params: str) -> str:
        """Subscribe this connection to a topic; in effect when this returns."""
        return await self.session.subscribe(self.gateway.channel(topic, **params), fields)

    async def unsubscribe(self, topic: Topic | str, **params: str) -> bool:
        """Remove this connection's subscription to a topic."""
        return await self.session.unsubscribe(self.gateway.channel(topic, **params))
