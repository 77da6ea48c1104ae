"""The protected members of marshmallow the gateway relies on, in one place, checked at import.

This is the one module that names marshmallow's protected members
(``PROTECTED_NAMES``); every other module reaches them through the functions
below, and ``tests/test_fences.py`` fails if one names them itself.
marshmallow has no public accessor for what these give:

- `has_hooks`: whether a schema declares hooks of a kind (``Schema._hooks``),
  which keep it off the compiled path (`drizzle_gateway.schema.compiled`) and keep a
  field selection from cutting an already-dumped event (`drizzle_gateway.schema.selection`);
- `serializer`: a field's dump of a present value (``Field._serialize``), what
  a schema, ``List`` and ``Dict`` call and the compiled dumpers fall back to;
- `set_nested_schema`: the schema a ``Nested`` field dumps with
  (``Nested._schema``, which ``Nested.schema`` builds once and returns), set
  on a copy of the field for a narrowed selection.

Importing this module checks that the installed marshmallow still has all of
it, laid out as marshmallow 4 lays it out, and raises ImportError naming that
marshmallow version and what differs if it does not. Earlier marshmallow 3
releases (3.20 among them) key ``Schema._hooks`` by ``(kind, pass_many)``
rather than by kind: the check refuses them, rather than let schemas with
hooks be compiled as if they had none.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from importlib.metadata import version
from typing import Any

from marshmallow import Schema, fields, post_dump
from marshmallow.decorators import POST_DUMP

SUPPORTED = "marshmallow>=4,<5"
"""The marshmallow versions whose protected members this module is written against and tested with."""

PROTECTED_NAMES = frozenset({"_hooks", "_serialize", "_schema"})
"""Every protected marshmallow member the package relies on; only this module names them."""


def _refers_to(function: Any, attribute: str) -> bool:
    """True when ``function``'s code refers to ``attribute`` (by its bytecode, so no source file is needed)."""
    code = getattr(function, "__code__", None)
    return code is not None and attribute in code.co_names


def _hooks_by_kind() -> str | None:
    """What is wrong with ``Schema._hooks`` as `has_hooks` reads it (None when it is keyed by hook kind)."""

    class Probe(Schema):
        class Meta:
            register = False

        @post_dump
        def unchanged(self, data: Any, **kwargs: Any) -> Any:
            return data

    hooks = getattr(Probe, "_hooks", None)
    if not isinstance(hooks, Mapping):
        return "Schema._hooks (the hooks a schema declares) is gone"
    if not hooks.get(POST_DUMP):
        return (f"Schema._hooks is not keyed by hook kind ({POST_DUMP!r}) as marshmallow 4 keys it "
                f"(its keys: {', '.join(sorted(map(repr, hooks)))})")
    return None


def missing() -> list[str]:
    """What of the layout this module relies on the installed marshmallow lacks ([] when all is there)."""
    problems = []
    hooks = _hooks_by_kind()
    if hooks:
        problems.append(hooks)
    serialize = getattr(fields.Field, "_serialize", None)
    if not callable(serialize):
        problems.append("Field._serialize is gone")
    elif list(inspect.signature(serialize).parameters)[:4] != ["self", "value", "attr", "obj"]:
        problems.append("Field._serialize no longer takes (value, attr, obj)")
    if not _refers_to(fields.Nested.__init__, "_schema"):
        problems.append("Nested.__init__ no longer sets _schema")
    schema = getattr(fields.Nested, "schema", None)
    if not isinstance(schema, property) or not _refers_to(schema.fget, "_schema"):
        problems.append("Nested.schema no longer returns the schema cached in _schema")
    return problems


def check() -> None:
    """Raise ImportError naming the installed marshmallow's version and what differs, if anything does."""
    problems = missing()
    if problems:
        raise ImportError(
            f"drizzle_gateway's schema layer does not support marshmallow {version('marshmallow')}: "
            + "; ".join(problems) + f". It is tested with {SUPPORTED}; install a marshmallow in that range."
        )


check()  # before anything below reads what may be missing


def has_hooks(schema: Schema, kind: str) -> bool:
    """True when ``schema`` declares hooks of ``kind`` (``POST_DUMP``, ``PRE_LOAD``... of marshmallow.decorators)."""
    return bool(schema._hooks.get(kind))


def serializer(field: fields.Field) -> Callable[..., Any]:
    """``field._serialize``: the field's dump of a present value, called as ``(value, attr, obj, **kwargs)``."""
    return field._serialize


def set_nested_schema(field: fields.Nested, schema: Schema) -> None:
    """Make ``field.schema`` return ``schema`` (a copy of the field, narrowed to a selection, dumps with it)."""
    field._schema = schema
