"""Typed channels: a name or pattern, a payload schema, and who may use it."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from marshmallow import ValidationError

from ..schema.publication import PublishCheck, Published
from ..schema.selection import SchemaLike, Selection, Selector
from ..wire.errors import ActionError, ErrorCode
from ..wire.history import Retention
from ..wire.idempotency import KEY_RULE, valid_key
from .permissions import Permission
from .presence import Presence, PresenceOf

_PARAM = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
PARAM_VALUE = r"[A-Za-z0-9_\-:@]+"


def _check_pattern(pattern: str, params: list[str]) -> None:
    """Refuse a pattern whose braces are not all ``{name}`` params, or that names a param twice."""
    stray = _PARAM.sub("", pattern)
    if "{" in stray or "}" in stray:
        raise ValueError(f"topic pattern {pattern!r} has an unmatched brace or a param that is not a name "
                         "(params are written {name}: letters, digits and _)")
    repeated = sorted({name for name in params if params.count(name) > 1})
    if repeated:
        raise ValueError(f"topic pattern {pattern!r} names the param {repeated[0]!r} more than once")


class Topic:
    """A typed channel such as ``Topic("todos", Todo)`` or ``Topic("chat.{room}", Message)``.

    Every publish is checked against ``schema`` before anyone receives it
    (the two publish rules: `drizzle_gateway.schema.publication`).
    ``client_subscribe`` and ``client_publish`` say whether websocket
    clients may subscribe to and publish on it themselves; ``can_subscribe``
    and ``can_publish`` refine that per user (``fn(user, params)``).
    ``history`` keeps the last N events of each concrete channel (for
    ``history_ttl`` seconds, if given): its events then carry offsets and
    clients can recover what they missed (see `drizzle_gateway.wire.history`).
    ``presence`` (a member schema) lists who is on each channel: each
    subscription's entry comes from ``presence_of(user, params)`` and, with
    ``client_presence``, from what the client sends; ``presence_key`` names
    the field that identifies a member (see `drizzle_gateway.contract.presence`).
    """

    def __init__(
        self,
        pattern: str,
        schema: SchemaLike | None,
        *,
        client_subscribe: bool = True,
        client_publish: bool = False,
        can_subscribe: Permission | None = None,
        can_publish: Permission | None = None,
        description: str = "",
        history: int | None = None,
        history_ttl: float | None = None,
        presence: SchemaLike | None = None,
        presence_of: PresenceOf | None = None,
        client_presence: bool = False,
        presence_key: str = "id",
    ) -> None:
        self.pattern = pattern
        self.params: list[str] = _PARAM.findall(pattern)
        _check_pattern(pattern, self.params)
        self.selector: Selector | None = Selector(schema) if schema is not None else None
        self._check = PublishCheck(self.selector.schema) if self.selector is not None else None
        self.client_subscribe = client_subscribe
        self.client_publish = client_publish
        self.can_subscribe = can_subscribe
        self.can_publish = can_publish
        self.description = description
        if history_ttl is not None and history is None:
            raise ValueError("history_ttl needs history")
        self.history: Retention | None = Retention(history, history_ttl) if history is not None else None
        if presence is None and (presence_of is not None or client_presence):
            raise ValueError("presence_of and client_presence need presence (the member schema)")
        self.presence: Presence | None = (
            Presence(presence, of=presence_of, client=client_presence, key=presence_key)
            if presence is not None else None)
        parts = _PARAM.split(pattern)
        regex = "".join(
            re.escape(part) if i % 2 == 0 else f"(?P<{part}>{PARAM_VALUE})" for i, part in enumerate(parts)
        )
        self._regex = re.compile(f"^{regex}$")

    def __repr__(self) -> str:
        return f"Topic({self.pattern!r})"

    @property
    def schema(self):
        """The payload schema instance, or None for an untyped topic."""
        return self.selector.schema if self.selector else None

    def match(self, name: str) -> dict[str, str] | None:
        """The params if ``name`` is a concrete channel of this topic, else None."""
        found = self._regex.match(name)
        return found.groupdict() if found else None

    def channel(self, **params: str) -> str:
        """The concrete channel name for ``params`` (``chat.{room}`` + room="x" -> ``chat.x``)."""
        if not self.params:  # a fixed name: its own channel
            return self.pattern
        missing = [p for p in self.params if p not in params]
        if missing:
            raise ValueError(f"topic {self.pattern!r} needs params: {', '.join(missing)}")
        name = _PARAM.sub(lambda m: str(params[m.group(1)]), self.pattern)
        if self.match(name) is None:
            raise ValueError(f"invalid params for topic {self.pattern!r}: {params!r}")
        return name

    def prepare(self, payload: Any) -> Any:
        """A server-side publish as every subscriber will receive it: dumped as a reply, then checked.

        ``payload`` is what a reply through the schema takes (a model object,
        a dict by attribute names). Raises marshmallow's `ValidationError`
        when the dump does not read back through the schema. A `Published`
        (from `accept`) passes as it is.
        """
        if self._check is None or isinstance(payload, Published):
            return payload
        return self._check.publish(payload)

    def accept(self, payload: Any) -> Any:
        """A client's ``__publish__`` payload: loaded as input, then dumped; `ValidationError` if it does not fit."""
        if self._check is None:
            return payload
        return self._check.accept(payload)

    def select(self, fields: list[str] | tuple[str, ...] | None) -> Selection | None:
        """The selection subscribers with ``fields`` receive."""
        if self.selector is None:
            if fields is not None:
                raise ActionError(ErrorCode.INVALID_FIELDS, "this topic has no schema to select from",
                                  {"fields": list(fields)})
            return None
        return self.selector.select(fields)


def find_topic(topics: Iterable[Topic], channel: str) -> tuple[Topic, dict[str, str]]:
    """The topic among ``topics`` a concrete channel belongs to, and its params; TOPIC_NOT_FOUND otherwise."""
    for topic in topics:
        params = topic.match(channel)
        if params is not None:
            return topic, params
    raise ActionError(ErrorCode.TOPIC_NOT_FOUND, f"topic {channel!r} is not declared")


def resolve(topics: Iterable[Topic], topic: Topic | str, **params: str) -> tuple[Topic, str]:
    """The topic among ``topics`` and the concrete channel for a Topic, a pattern (with params) or a channel name.

    Raises `ActionError` TOPIC_NOT_FOUND.
    """
    declared = list(topics)
    if isinstance(topic, Topic):
        if topic not in declared:
            raise ActionError(ErrorCode.TOPIC_NOT_FOUND, f"topic {topic.pattern!r} is not declared")
        return topic, topic.channel(**params)
    for candidate in declared:
        if candidate.pattern == topic:
            return candidate, candidate.channel(**params)
    return find_topic(declared, topic)[0], topic


def prepare_publish(topics: Iterable[Topic], topic: Topic | str, payload: Any, idempotency_key: str | None,
                    params: dict[str, str]) -> tuple[Topic, str, Any]:
    """A server-side publish checked and dumped once: its topic, its concrete channel, what subscribers get.

    What `Gateway.publish` and `drizzle_gateway.Publisher` both run. Raises
    marshmallow's `ValidationError` when the topic is not among ``topics``,
    the idempotency key is malformed, or the payload does not fit the
    topic's schema (`Topic.prepare`).
    """
    try:
        declared, channel = resolve(topics, topic, **params)
    except ActionError as exc:
        raise ValidationError({"topic": [exc.message]}) from None
    if idempotency_key is not None and not valid_key(idempotency_key):
        raise ValidationError({"idempotency_key": [f"must be {KEY_RULE}"]})
    return declared, channel, declared.prepare(payload)
