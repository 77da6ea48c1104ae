"""A publish on a typed topic: checked once, dumped once, shared by every subscriber.

The two publish rules (docs/protocol.md, "Publishing"):

- A server-side publish (`Gateway.publish`, `Resource.publish`) takes what a
  reply through the topic's schema takes (model objects, attribute names,
  ``dump_only`` fields) and dumps it as a reply would. Before anyone
  receives it, the dump is read back with the schema (as a client's input
  would be, its ``pre_load`` hooks and validators included, ignoring keys
  the schema does not load: dump-only ones and ones hooks added); any
  error is raised as `ValidationError` and nothing is delivered. The
  read-back loads a copy of the dump (a hook's in-place edits never reach
  subscribers) and needs no more than the dump did (no database session).
- A client's ``__publish__`` payload is loaded with the schema as input;
  what it loads to is dumped as a server-side publish of it would be.
"""

from __future__ import annotations

import copy
import inspect
import logging
from typing import Any

from marshmallow import Schema, ValidationError
from marshmallow import fields as mfields

from .compiled import compile_schema
from .selection import Selection, nested_schema, wire_name

logger = logging.getLogger("drizzle_gateway")

DUMP_ERRORS = (ValueError, TypeError, AttributeError, ArithmeticError, LookupError)
"""What a marshmallow field raises when it is asked to dump a value of the wrong type."""

_MAX_DEPTH = 8


class Published:
    """One publish: ``data`` (the topic schema's full dump) and ``source``, what was dumped.

    Brokers carry it as it is within the process and as ``data`` beyond
    (it encodes as ``data``); subscribers with a field selection get
    `for_selection`, computed once per distinct selection.
    """

    __slots__ = ("data", "source", "_dumped")

    def __init__(self, data: Any, source: Any) -> None:
        self.data = data
        self.source = source
        self._dumped: dict[frozenset[str] | None, Any] | None = None  # for_selection's dumps, by fields

    def __json__(self) -> Any:
        """What goes on the wire (and through Redis): the full dump."""
        return self.data

    def for_selection(self, selection: Selection) -> Any:
        """What a subscriber with ``selection`` receives: the reply's dump of the same object.

        A selection that cannot be cut from ``data`` (a ``post_dump`` hook on a
        narrowed level) is dumped once per publish, as one reply would be,
        however many views and history reads ask for it.
        """
        if selection.projectable:
            return selection.cut(self.data)
        dumped = self._dumped
        if dumped is None:
            dumped = self._dumped = {}
        elif selection.fields in dumped:
            return dumped[selection.fields]
        data = dumped[selection.fields] = selection.dump(self.source)
        return data


def payload_of(message: Any, selection: Selection | None) -> Any:
    """The event data for subscribers with ``selection``, from what the broker delivered.

    A message that crossed processes is plain dumped data; a selection that
    is not projectable (a ``post_dump`` hook on a narrowed level) is then
    cut from it as well, the best that can be done without the object.
    """
    if isinstance(message, Published):
        return message.data if selection is None or selection.fields is None else message.for_selection(selection)
    if selection is None or selection.tree is None:
        return message
    if not selection.projectable and not selection.warned:
        selection.warned = True
        logger.warning("fields %s run through a post_dump hook: events from other processes are cut from the "
                       "full dump, which can differ from a reply with the same fields", sorted(selection.fields or ()))
    return selection.cut(message)


def _unknown_messages(schema: Schema) -> set[str]:
    return {Schema.error_messages.get("unknown", "Unknown field."), schema.error_messages.get("unknown", "")}


def _prune(messages: Any, unknown: set[str]) -> Any:
    """``messages`` without "Unknown field." entries; None when nothing else is left."""
    if isinstance(messages, dict):
        kept = {key: sub for key, value in messages.items() if (sub := _prune(value, unknown)) is not None}
        return kept or None
    if isinstance(messages, list):
        left = [m for m in messages if not (isinstance(m, str) and m in unknown)]
        left = [m if isinstance(m, str) else _prune(m, unknown) for m in left]
        left = [m for m in left if m is not None]
        return left or None
    return messages


def _load_only_paths(schema: Schema, prefix: str = "", depth: int = 0) -> list[str]:
    """Dotted names of the load-only fields (a dump never carries them)."""
    paths: list[str] = []
    if depth > _MAX_DEPTH:
        return paths
    for name, field in schema.load_fields.items():
        if field.load_only:
            paths.append(prefix + name)
            continue
        inner = nested_schema(field) if isinstance(field, (mfields.Nested, mfields.List)) else None
        if inner is not None and inner is not schema:
            paths.extend(_load_only_paths(inner, f"{prefix}{name}.", depth + 1))
    return paths


def _fresh(data: Any) -> Any:
    """A copy of dumped ``data`` for a hook to edit: its dicts and lists new, every other value shared."""
    if isinstance(data, dict):
        copied = copy.copy(data)
        for key, value in data.items():
            copied[key] = _fresh(value)
        return copied
    if isinstance(data, list):
        return [_fresh(value) for value in data]
    if type(data) is tuple:
        return tuple(_fresh(value) for value in data)
    return data


def _has_transient_option(schema: Schema) -> bool:
    """Whether ``schema`` loads without a session when ``transient`` (marshmallow-sqlalchemy's option)."""
    return isinstance(getattr(schema.opts, "transient", None), bool) and isinstance(
        inspect.getattr_static(type(schema), "transient", None), property)


class PublishCheck:
    """Dumps server-side publishes for one topic schema and checks the dump reads back."""

    def __init__(self, schema: Schema) -> None:
        self.schema = schema
        self._compiled = compile_schema(schema)
        self._partial = tuple(_load_only_paths(schema)) or False
        self._unknown = _unknown_messages(schema)

    def dump(self, payload: Any) -> Any:
        """The schema's dump of ``payload``; a value of the wrong type raises `ValidationError`."""
        try:
            return self._compiled.dump(payload)
        except DUMP_ERRORS as exc:
            raise ValidationError(self._dump_error(payload, exc)) from None

    def _dump_error(self, payload: Any, exc: Exception) -> dict:
        """Which field failed to dump, found by dumping the fields one by one."""
        items = payload if self.schema.many and isinstance(payload, (list, tuple)) else [payload]
        errors: dict = {}
        for index, item in enumerate(items):
            for name, field in self.schema.dump_fields.items():
                try:
                    field.serialize(name, item, accessor=self.schema.get_attribute)
                except DUMP_ERRORS:
                    message = field.error_messages.get("invalid", "Invalid value.")
                    key = wire_name(name, field)
                    (errors.setdefault(index, {}) if self.schema.many else errors)[key] = [message]
        return errors or {"_schema": [f"cannot be dumped: {exc}"]}

    def check(self, data: Any) -> None:
        """Read the dump back with the schema; raise `ValidationError` if it does not fit.

        ``data`` is what subscribers receive, so marshmallow reads back a copy
        of it: hooks see what ``schema.load(data)`` would show them, and what
        they edit in place stays in the copy. A schema that loads model
        instances through a session (marshmallow-sqlalchemy's, which has a
        ``transient`` option) is read back transient: a dump needs no session
        and no database, and neither does its check.
        """
        fast = self._compiled.loader(self._partial, self.schema.unknown)
        if fast is not None:
            try:
                fast(data)  # generated code: it edits nothing and runs no hook
                return
            except Exception:
                pass  # marshmallow decides, on a copy
        messages = self._read_back(_fresh(data))
        if not messages:
            return
        remaining = _prune(messages, self._unknown)
        if remaining:
            raise ValidationError(remaining)

    def _read_back(self, data: Any) -> dict:
        """marshmallow's ``schema.validate`` of ``data`` (transient where the schema can be)."""
        schema: Any = self.schema
        if not _has_transient_option(schema) or schema.transient:
            return schema.validate(data, partial=self._partial)
        schema.transient = True  # no await below: nothing else uses the schema meanwhile
        try:
            return schema.validate(data, partial=self._partial)
        finally:
            schema.transient = False

    def publish(self, payload: Any) -> Published:
        """Dump and check a server-side publish."""
        data = self.dump(payload)
        self.check(data)
        return Published(data, payload)

    def accept(self, payload: Any) -> Published:
        """Load a client's ``__publish__`` payload as input, then dump what it loaded to."""
        loaded = self._compiled.load(payload)
        return Published(self.dump(loaded), loaded)
