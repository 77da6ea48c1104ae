"""The protected members of marshmallow the gateway relies on, and what differs between its lines, in one place.

This is the one module that names marshmallow's protected members
(``PROTECTED_NAMES``); every other module reaches them through the functions
below, and ``tests/schema/test_marshmallow_internals.py`` fails if one names
them itself. marshmallow has no public accessor for what these give:

- `has_hooks`: whether a schema declares hooks of a kind (``Schema._hooks``),
  which keep it off the compiled path (`drizzle_gateway.schema.compiled`) and keep a
  field selection from cutting an already-dumped event (`drizzle_gateway.schema.selection`);
- `serializer`: a field's dump of a present value (``Field._serialize``), what
  a schema, ``List`` and ``Dict`` call and the compiled dumpers fall back to;
- `set_nested_schema`: the schema a ``Nested`` field dumps with
  (``Nested._schema``, which ``Nested.schema`` builds once and returns), set
  on a copy of the field for a narrowed selection.

The supported range is marshmallow 3.20 through 4.x (``SUPPORTED``). Its
releases lay ``Schema._hooks`` out in two ways (older 3.x ones, 3.20 among
them, key it by ``(kind, pass_many)``, later ones by kind) and `has_hooks`
reads either; importing this module checks that the installed marshmallow
has everything above, its hooks in one of those layouts, and raises
ImportError naming that marshmallow version and what differs if it does not.

The compiled fast path inlines what a built-in field does with a value; where
the lines do that differently, the constants below say what the installed
marshmallow does (found by asking it, through its public API, at import), so
the generated code does the same or leaves the value to marshmallow:

- `BOOLEAN_DUMP_CONVERTS`: ``Boolean`` dumps a non-bool by its truthy/falsy
  sets (marshmallow 3: ``0`` as ``False``) rather than as it is (marshmallow 4);
- `FALSE_FAILS_VALIDATION`: a plain validator function that returns ``False``
  fails validation (marshmallow 3) rather than passing (marshmallow 4);
- `FIELD_PROCESSORS`: fields take ``pre_load``/``post_load`` callables
  (marshmallow 4.3 and later).
"""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Callable, Mapping
from importlib.metadata import version
from typing import Any

from marshmallow import Schema, ValidationError, fields, post_dump
from marshmallow.decorators import POST_DUMP

SUPPORTED = "marshmallow>=3.20,<5"
"""The marshmallow versions whose protected members this module is written against and tested with."""

PROTECTED_NAMES = frozenset({"_hooks", "_serialize", "_schema"})
"""Every protected marshmallow member the package relies on; only this module names them."""

def _refers_to(function: Any, attribute: str) -> bool:
    """True when ``function``'s code refers to ``attribute`` (by its bytecode, so no source file is needed)."""
    code = getattr(function, "__code__", None)
    return code is not None and attribute in code.co_names


def _hook_keys(kind: str) -> tuple[Any, ...]:
    """The keys ``Schema._hooks`` may hold hooks of ``kind`` under: by kind, or by ``(kind, pass_many)``."""
    return kind, (kind, False), (kind, True)


def _hooks_layout() -> str | None:
    """What is wrong with ``Schema._hooks`` as `has_hooks` reads it (None when it is laid out as it expects)."""

    class Probe(Schema):
        class Meta:
            register = False

        @post_dump
        def unchanged(self, data: Any, **kwargs: Any) -> Any:
            return data

    hooks = getattr(Probe, "_hooks", None)
    if not isinstance(hooks, Mapping):
        return "Schema._hooks (the hooks a schema declares) is gone"
    if not any(hooks.get(key) for key in _hook_keys(POST_DUMP)):
        return (f"Schema._hooks is keyed neither by hook kind ({POST_DUMP!r}) nor by (kind, pass_many) "
                f"(its keys: {', '.join(sorted(map(repr, hooks)))})")
    return None


def missing() -> list[str]:
    """What of the layout this module relies on the installed marshmallow lacks ([] when all is there)."""
    problems = []
    hooks = _hooks_layout()
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
    hooks = schema._hooks
    return any(hooks.get(key) for key in _hook_keys(kind))


def serializer(field: fields.Field) -> Callable[..., Any]:
    """``field._serialize``: the field's dump of a present value, called as ``(value, attr, obj, **kwargs)``."""
    return field._serialize


def set_nested_schema(field: fields.Nested, schema: Schema) -> None:
    """Make ``field.schema`` return ``schema`` (a copy of the field, narrowed to a selection, dumps with it)."""
    field._schema = schema


# -- what differs between marshmallow 3 and 4, asked of the installed one --------------------------


def _boolean_dump_converts() -> bool:
    """True when ``Boolean`` dumps ``0`` as ``False`` (marshmallow 3), False when as ``0`` (marshmallow 4)."""
    return fields.Boolean().serialize("value", {"value": 0}) is False


def _false_fails_validation() -> bool:
    """True when a plain validator returning ``False`` fails (marshmallow 3), as fields run validators."""
    with warnings.catch_warnings():  # marshmallow 3.2x warns that marshmallow 4 no longer does this
        warnings.simplefilter("ignore")
        try:
            fields.Raw(validate=lambda value: False).deserialize(1)
        except ValidationError:
            return True
    return False


BOOLEAN_DUMP_CONVERTS = _boolean_dump_converts()
"""``Boolean`` dumps a non-bool by its truthy/falsy sets (marshmallow 3), not as it is (marshmallow 4)."""

FALSE_FAILS_VALIDATION = _false_fails_validation()
"""A plain validator function returning ``False`` fails the value (marshmallow 3), not only one that raises."""

FIELD_PROCESSORS = "pre_load" in inspect.signature(fields.Field.__init__).parameters
"""Fields take ``pre_load``/``post_load`` callables (marshmallow 4.3 and later); without them a field has none."""


def field_processors(field: fields.Field) -> bool:
    """True when ``field`` has ``pre_load`` or ``post_load`` callables (never before marshmallow 4.3)."""
    return FIELD_PROCESSORS and bool(getattr(field, "pre_load", None) or getattr(field, "post_load", None))
