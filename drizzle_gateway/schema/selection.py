"""GraphQL-style field selection over marshmallow schemas.

``fields=["id", "author.name"]`` picks parts of a schema's output by the
names clients see (a field's ``data_key``, else its attribute name), at
any depth of ``Nested`` and ``List(Nested)`` fields; into a ``Pluck`` only
by the name of the field it plucks (as marshmallow's ``only`` takes it),
which selects it whole. A selection only ever narrows the schema as it is
declared: its ``only``, ``exclude``, ``load_only`` and nested options
still apply, so a name the schema does not send cannot be selected.

A `Selector` checks each selection once and keeps it: a narrowed copy of
the bound schema (same class, so ``pre_dump``/``post_dump`` hooks run as
on a reply) and, for events, a tree to cut already-dumped data with when
that is provably the same as dumping with the narrowed schema.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any, cast

from marshmallow import Schema
from marshmallow import fields as mfields
from marshmallow.decorators import POST_DUMP

from ..wire.errors import ActionError, ErrorCode
from .compiled import compile_schema
from .marshmallow_internals import has_hooks, set_nested_schema

SchemaLike = Schema | type[Schema]
Tree = dict[str, Any]  # wire name -> sub-tree, or None for "the whole value"

MAX_CACHED_SELECTIONS = 256
MAX_SELECTION_DEPTH = 64
"""Dotted names with more parts are refused (a self-referencing schema has no bottom)."""
NAMED_IN_TEXT = 5
"""Unknown fields an INVALID_FIELDS text names; ``details.fields`` lists them (within the error frame's bounds)."""


def as_schema(schema: SchemaLike) -> Schema:
    """An instance of ``schema`` (classes are instantiated with no arguments)."""
    return schema() if isinstance(schema, type) else schema


def wire_name(name: str, field: mfields.Field) -> str:
    """The key a dumped field has on the wire: its ``data_key``, else its attribute name."""
    return field.data_key if field.data_key is not None else name


def nested_schema(field: mfields.Field) -> Schema | None:
    """The bound schema a selection path may continue into (``Nested``, ``List(Nested)``), or None."""
    if isinstance(field, mfields.List):
        field = field.inner
    if isinstance(field, mfields.Nested) and not isinstance(field, mfields.Pluck):
        return field.schema
    return None


def _plucked(field: mfields.Field) -> str | None:
    """The name of the field a ``Pluck`` (or ``List(Pluck)``) dumps, or None for any other field."""
    if isinstance(field, mfields.List):
        field = field.inner
    return field.field_name if isinstance(field, mfields.Pluck) else None


def _with_schema(field: mfields.Field, schema: Schema) -> mfields.Field:
    """A copy of a (``List`` of) ``Nested`` field that dumps with ``schema`` instead."""
    field = copy.copy(field)
    if isinstance(field, mfields.List):
        field.inner = _with_schema(field.inner, schema)
    else:
        set_nested_schema(cast(mfields.Nested, field), schema)
    return field


def _group(names: Iterable[str]) -> tuple[Tree, list[str]]:
    """Dotted names as a tree; the more specific of ``a`` and ``a.b`` wins, as in marshmallow's ``only``."""
    tree: Tree = {}
    invalid: list[str] = []
    for name in names:
        parts = name.split(".")
        if not all(parts) or len(parts) > MAX_SELECTION_DEPTH:
            invalid.append(name)
            continue
        node = tree
        for part in parts[:-1]:
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            node = child
        node.setdefault(parts[-1], None)
    return tree, invalid


def _paths(tree: Tree, prefix: str) -> list[str]:
    out: list[str] = []
    for key, sub in tree.items():
        out.extend([prefix + key] if sub is None else _paths(sub, f"{prefix}{key}."))
    return out


def narrow(schema: Schema, tree: Tree, prefix: str = "") -> tuple[Schema, list[str], bool]:
    """``schema`` cut down to ``tree``: (the narrowed copy, names it does not send, projectable).

    Projectable means cutting the full dump with ``tree`` gives exactly what
    the narrowed copy dumps: no ``post_dump`` hook runs on a narrowed level.
    """
    by_wire = {wire_name(name, field): name for name, field in schema.dump_fields.items()}
    invalid: list[str] = []
    projectable = not has_hooks(schema, POST_DUMP)
    chosen: dict[str, mfields.Field] = {}
    for key, sub in tree.items():
        name = by_wire.get(key)
        if name is None:
            invalid.append(prefix + key)
            continue
        field = schema.dump_fields[name]
        if sub is None:
            chosen[name] = field
            continue
        plucked = _plucked(field)
        if plucked is not None:  # its one sub-field, by the name marshmallow's ``only`` takes, is the whole of it
            invalid.extend(path for path in _paths(sub, f"{prefix}{key}.") if path != f"{prefix}{key}.{plucked}")
            if plucked in sub and sub[plucked] is None:
                tree[key] = None  # cut as the whole value (what the field dumps is the plucked value)
                chosen[name] = field
            continue
        inner = nested_schema(field)
        if inner is None:
            invalid.extend(_paths(sub, f"{prefix}{key}."))
            continue
        narrowed, inner_invalid, inner_projectable = narrow(inner, sub, f"{prefix}{key}.")
        invalid.extend(inner_invalid)
        projectable = projectable and inner_projectable
        chosen[name] = _with_schema(field, narrowed)
    result = copy.copy(schema)  # what marshmallow's own Nested does to apply `only` to an instance
    result.dump_fields = schema.dict_class((n, chosen[n]) for n in schema.dump_fields if n in chosen)
    result.fields = schema.dict_class(result.dump_fields)
    result.only = schema.set_class(result.dump_fields)
    return result, invalid, projectable


def project(data: Any, tree: Tree | None) -> Any:
    """Keep only the parts of dumped ``data`` that ``tree`` names."""
    if tree is None:
        return data
    if isinstance(data, (list, tuple)):
        return [project(item, tree) for item in data]
    if isinstance(data, dict):
        return {key: project(data[key], sub) for key, sub in tree.items() if key in data}
    return data


def _hint(schema: Schema, invalid: list[str]) -> str:
    """A reminder of the wire name when a top-level attribute name was used instead."""
    renamed = {name: field.data_key for name, field in schema.dump_fields.items()
               if field.data_key is not None and field.data_key != name}
    used = [f"{name} -> {renamed[name]}" for name in invalid if name in renamed]
    return f" (fields are named as on the wire: {', '.join(used)})" if used else ""


class Selection:
    """One checked field selection on one schema.

    ``schema`` dumps what a reply with these ``fields`` carries; ``tree``
    cuts an already-dumped event to the same, when ``projectable``.
    """

    __slots__ = ("fields", "schema", "tree", "projectable", "warned")

    def __init__(self, fields: frozenset[str] | None, schema: Schema, tree: Tree | None,
                 projectable: bool = True) -> None:
        self.fields = fields
        self.schema = schema
        self.tree = tree
        self.projectable = projectable
        self.warned = False  # about events that could only be cut (see publication.payload_of)

    def dump(self, obj: Any) -> Any:
        """Exactly ``self.schema.dump(obj)``, through the schema's compiled dumper."""
        return compile_schema(self.schema).dump(obj)

    def cut(self, dumped: Any) -> Any:
        """The selected part of the schema's full dump (only meaningful when ``projectable``)."""
        return project(dumped, self.tree)


class Selector:
    """The selections a schema has been asked for, each checked and built once."""

    def __init__(self, schema: SchemaLike) -> None:
        self.schema = as_schema(schema)
        self._cache: dict[frozenset[str], Selection] = {}
        self.all = Selection(None, self.schema, None)

    def select(self, fields: Iterable[str] | None) -> Selection:
        """The selection for ``fields``; `ActionError` INVALID_FIELDS names unknown ones."""
        if fields is None:
            return self.all
        key = frozenset(fields)
        selection = self._cache.get(key)
        if selection is None:
            selection = self._build(key)
            if len(self._cache) >= MAX_CACHED_SELECTIONS:
                self._cache.pop(next(iter(self._cache)))
            self._cache[key] = selection
        return selection

    def _build(self, key: frozenset[str]) -> Selection:
        if not key:
            raise ActionError(ErrorCode.INVALID_FIELDS, "'fields' must name at least one field", {"fields": []})
        tree, invalid = _group(sorted(key))
        schema, unknown, projectable = narrow(self.schema, tree)
        invalid = sorted({*invalid, *unknown})
        if invalid:
            named = ", ".join(invalid[:NAMED_IN_TEXT])
            more = f" and {len(invalid) - NAMED_IN_TEXT} more" if len(invalid) > NAMED_IN_TEXT else ""
            message = f"unknown fields: {named}{more}{_hint(self.schema, invalid[:NAMED_IN_TEXT])}"
            raise ActionError(ErrorCode.INVALID_FIELDS, message, {"fields": invalid})
        return Selection(key, schema, tree, projectable)
