"""GraphQL-style field selection over marshmallow schemas.

``fields=["id", "author.name"]`` picks parts of a schema's output. A
`Selector` checks the names once, then builds (and keeps) a marshmallow
schema with ``only=`` for replies, and a projection of already-dumped data
for events, which are dumped once and shared by every subscriber.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from marshmallow import Schema
from marshmallow import fields as mfields

from .errors import ActionError, ErrorCode

SchemaLike = Schema | type[Schema]
Tree = dict[str, Any]  # data key -> sub-tree, or None for "the whole value"

MAX_CACHED_SELECTIONS = 256


def as_schema(schema: SchemaLike) -> Schema:
    """An instance of ``schema`` (classes are instantiated with no arguments)."""
    return schema() if isinstance(schema, type) else schema


def _nested_schema(field: mfields.Field) -> Schema | None:
    if isinstance(field, mfields.List):
        field = field.inner
    if isinstance(field, mfields.Nested):
        return field.schema
    return None


def _tree(schema: Schema, names: Iterable[str], path: str = "") -> tuple[Tree, list[str]]:
    """Map attribute paths to a tree of data keys, collecting unknown names."""
    tree: Tree = {}
    invalid: list[str] = []
    groups: dict[str, list[str]] = {}
    for name in names:
        head, _, rest = name.partition(".")
        groups.setdefault(head, [])
        if rest:
            groups[head].append(rest)
    for head, rests in groups.items():
        field = schema.fields.get(head)
        if field is None or field.load_only:
            invalid.append(path + head)
            continue
        key = field.data_key or head
        if not rests:
            tree[key] = None
            continue
        nested = _nested_schema(field)
        if nested is None:
            invalid.extend(f"{path}{head}.{rest}" for rest in rests)
            continue
        subtree, sub_invalid = _tree(nested, rests, f"{path}{head}.")
        invalid.extend(sub_invalid)
        tree[key] = subtree
    return tree, invalid


def project(data: Any, tree: Tree | None) -> Any:
    """Keep only the parts of dumped ``data`` that ``tree`` names."""
    if tree is None:
        return data
    if isinstance(data, list):
        return [project(item, tree) for item in data]
    if isinstance(data, dict):
        return {key: project(data[key], sub) for key, sub in tree.items() if key in data}
    return data


class Selection:
    """One checked field selection on one schema."""

    __slots__ = ("fields", "schema", "tree")

    def __init__(self, fields: frozenset[str] | None, schema: Schema, tree: Tree | None):
        self.fields = fields
        self.schema = schema
        self.tree = tree


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
        tree, invalid = _tree(self.schema, sorted(key))
        if invalid:
            raise ActionError(
                ErrorCode.INVALID_FIELDS,
                f"unknown fields: {', '.join(sorted(invalid))}",
                {"fields": sorted(invalid)},
            )
        proto = self.schema
        only_schema = type(proto)(only=sorted(key), many=proto.many)
        return Selection(key, only_schema, tree)
