"""Resources and their actions, described by marshmallow schemas."""

from __future__ import annotations

import inspect
import numbers
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, TypeVar, cast, overload

from marshmallow import Schema, ValidationError

from ..schema.compiled import compile_schema
from ..schema.selection import SchemaLike, Selection, Selector, as_schema
from ..wire.errors import ActionError, ErrorCode
from .permissions import Permission

if TYPE_CHECKING:
    from ..brokers.base import Receipt
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

    async def publish(self, topic: Topic | str, payload: Any, *, idempotency_key: str | None = None,
                      **params: str) -> Receipt:
        """Publish ``payload`` to a topic, checked against its schema first (once per ``idempotency_key``)."""

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

    def dump(self, selection: Selection, result: Any) -> Any:
        """The action's result through its output selection.

        A value the output schema can only misread (a string, a number, None,
        or a list for a schema not declared ``many=True``) is a server-side
        bug: `TypeError` naming the action, which the request answers with
        INTERNAL_ERROR, never a silent ``{}``.
        """
        wrong = _undumpable(result, selection.schema.many)
        if wrong:
            raise TypeError(f"action {self.name!r} returned {wrong}, which its output schema "
                            f"{type(selection.schema).__name__} cannot dump: {_dumpable(selection.schema.many)}")
        return selection.dump(result)

    async def invoke(self, instance: Resource, data: Any, request: Request) -> Any:
        """Call the action; works for ``async def``, plain and ``@gen.coroutine`` functions."""
        result = self.func(instance, data)
        if inspect.isawaitable(result):
            result = await result
        return result


def _undumpable(result: Any, many: bool) -> str:
    """What is wrong with ``result`` as the input of a schema's dump ("" when nothing is)."""
    if type(result) is dict and not many:  # what most actions return: skip the ABC checks below
        return ""
    if result is None or isinstance(result, str | bytes | bytearray | numbers.Number):
        return f"{_short(result)} ({type(result).__name__})"
    if many and (isinstance(result, Mapping) or not isinstance(result, Iterable)):
        return f"one {type(result).__name__} where many are declared"
    if not many and isinstance(result, list | tuple | set | frozenset):
        return f"a {type(result).__name__}"
    if many and isinstance(result, list | tuple):  # (a generator is left alone: checking would consume it)
        return next((f"a {type(result).__name__} holding {_short(item)} ({type(item).__name__})" for item in result
                     if _undumpable(item, False)), "")
    return ""


def _dumpable(many: bool) -> str:
    if many:
        return "return a list of dicts or objects with the schema's attributes"
    return ("return a dict or an object with the schema's attributes "
            "(declare the schema with many=True to return a list)")


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


_Method = TypeVar("_Method", bound=Callable[..., Any])


@overload
def action(input: _Method) -> _Method: ...


@overload
def action(
    input: SchemaLike | None = None,
    output: SchemaLike | None = None,
    *,
    name: str | None = None,
    allow: Permission | None = None,
) -> Callable[[_Method], _Method]: ...


def action(
    input: SchemaLike | Callable[..., Any] | None = None,
    output: SchemaLike | None = None,
    *,
    name: str | None = None,
    allow: Permission | None = None,
) -> Any:
    """Declare a resource method callable over the wire: ``@action(input=..., output=...)``, or bare ``@action``.

    ``input`` validates and loads the request's ``data``; ``output`` dumps
    the return value and is what ``fields`` select from. Only decorated
    methods are ever reachable. An ``async def`` that yields is a
    streaming action: each item it yields is dumped by ``output`` and sent
    as it comes (see `drizzle_gateway.runtime.streams`).
    """
    if _is_method(input):  # written without parentheses: `input` is the method itself
        method: Any = input
        return action()(method)
    if input is not None and not _is_schema(input):
        raise TypeError(f"@action(input=...) takes a marshmallow Schema class or instance, not {input!r}")
    if output is not None and not _is_schema(output):
        raise TypeError(f"@action(output=...) takes a marshmallow Schema class or instance, not {output!r}")
    schema_in = cast("SchemaLike | None", input)

    def decorate(func: _Method) -> _Method:
        # An attribute of the function (Resource collects them); setattr, as Callable declares no such attribute.
        setattr(func, "__drizzle_action__", Action(func, name=name, input=schema_in, output=output, allow=allow))  # noqa: B010
        return func

    return decorate


def _is_method(value: object) -> bool:
    """True for what ``def`` makes (plain, ``async`` or ``@gen.coroutine``), which no schema is."""
    return inspect.isfunction(value)


def _is_schema(value: object) -> bool:
    return isinstance(value, Schema) or (isinstance(value, type) and issubclass(value, Schema))


def instance_refused(cls: type) -> str:
    """What to say when a resource is made by hand: the gateway makes one per request."""
    return (f"the gateway makes a {cls.__name__} for each request: pass the class {cls.__name__}, "
            f"not an instance (Gateway(resources=[{cls.__name__}]))")


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

    def __init__(self, session: Caller | None = None, gateway: Host | None = None) -> None:
        if session is None or gateway is None:
            raise TypeError(instance_refused(type(self)))
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

    async def publish(self, topic: Topic | str, payload: Any, *, idempotency_key: str | None = None,
                      **params: str) -> Receipt:
        """Publish ``payload`` to a topic: what a reply through its schema takes (checked before delivery).

        A repeat of ``idempotency_key`` on the channel within the broker's window reaches nobody (see
        `drizzle_gateway.Gateway.publish`).
        """
        return await self.gateway.publish(topic, payload, idempotency_key=idempotency_key, **params)

    async def subscribe(self, topic: Topic | str, fields: list[str] | None = None, **params: str) -> str:
        """Subscribe this connection to a topic; in effect when this returns."""
        return await self.session.subscribe(self.gateway.channel(topic, **params), fields)

    async def unsubscribe(self, topic: Topic | str, **params: str) -> bool:
        """Remove this connection's subscription to a topic."""
        return await self.session.unsubscribe(self.gateway.channel(topic, **params))
