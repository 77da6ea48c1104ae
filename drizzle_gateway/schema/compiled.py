"""Compiled schemas: each bound marshmallow schema turned, once, into a fast loader and dumper.

`compile_schema` generates Python source per schema (one straight-line
function for load, one for dump, like toasted-marshmallow) for marshmallow's
built-in fields. The generated code only handles what it can prove is the
successful outcome: the value types a field passes through unchanged (a
``str`` for ``Str``, an ``int`` for ``Int``...), validators that pass, keys
that are known. On anything else (an invalid or unusual value, a missing
required key, an unknown key under RAISE, any exception at all) it gives up
and marshmallow's own ``schema.load``/``schema.dump`` runs instead, so every
error, its messages and their nesting are marshmallow's own.

A schema marshmallow could run differently is never compiled: hooks,
overridden `Schema` methods, custom field classes, ``Method`` and
``Function`` fields. Its `Compiled` has ``fast`` false and runs marshmallow.
Built-in fields the generated code does not inline (``DateTime``,
``Decimal``, ``UUID``, ``Email``, ``Tuple``...) are called through their own
``deserialize``/``serialize``, as marshmallow's schema calls them.

A compiled schema is a snapshot: mutating a schema instance after its first
load or dump is not seen (build a new instance instead).
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable
from typing import Any

from marshmallow import EXCLUDE, INCLUDE, RAISE, Schema, fields
from marshmallow.decorators import POST_DUMP, POST_LOAD, PRE_DUMP, PRE_LOAD, VALIDATES, VALIDATES_SCHEMA
from marshmallow.utils import get_value, missing, set_value

from .compiled_fields import INLINED, GiveUp, check_source, field_dumper, field_loader
from .marshmallow_internals import field_processors, has_hooks

logger = logging.getLogger("drizzle_gateway.compiled")

_SLOT = "_drizzle_compiled"
_HOOKS = (PRE_LOAD, POST_LOAD, VALIDATES, VALIDATES_SCHEMA, PRE_DUMP, POST_DUMP)
_SCHEMA_METHODS = {name: value for name, value in vars(Schema).items()
                   if not name.startswith("__")
                   and (inspect.isfunction(value) or isinstance(value, (property, classmethod, staticmethod)))}
"""What a Schema subclass must not override (or set on an instance) to be compiled."""
_NOT_COMPILED = {fields.Method, fields.Function, fields.Field, fields.Number, fields.Mapping}


def compile_schema(schema: Schema) -> Compiled:
    """The `Compiled` of a bound schema instance, built on first use and kept on the instance."""
    compiled = schema.__dict__.get(_SLOT)
    if compiled is None or compiled.schema is not schema:  # copy.copy(schema) copies the slot too
        compiled = Compiled(schema)
        schema.__dict__[_SLOT] = compiled
    return compiled


def _unsupported_field(field: fields.Field) -> str | None:
    """Why ``field`` (or a field inside it) keeps its schema off the fast path, or None."""
    kind = type(field)
    if kind in _NOT_COMPILED or getattr(fields, kind.__name__, None) is not kind:
        return f"field class {kind.__name__}"
    inner = [getattr(field, "inner", None), getattr(field, "key_field", None), getattr(field, "value_field", None),
             *getattr(field, "tuple_fields", ())]
    return next((why for sub in inner if sub is not None and (why := _unsupported_field(sub))), None)


def why_not_compiled(schema: Schema) -> str | None:
    """Why marshmallow must run ``schema`` itself, or None when it can be compiled."""
    cls = type(schema)
    for name, value in _SCHEMA_METHODS.items():
        if inspect.getattr_static(cls, name) is not value or name in vars(schema):
            return f"{cls.__name__} overrides {name}"
    hooks = [tag for tag in _HOOKS if has_hooks(schema, tag)]
    if hooks:
        return f"{cls.__name__} has hooks ({', '.join(map(str, hooks))})"
    for name, field in {**schema.load_fields, **schema.dump_fields}.items():
        why = _unsupported_field(field)
        if why:
            return f"{cls.__name__}.{name}: {why}"
    return None


class Compiled:
    """One schema's compiled ``load``/``dump``; marshmallow's own when ``fast`` is false."""

    def __init__(self, schema: Schema) -> None:
        self.schema = schema
        self.reason = why_not_compiled(schema)
        self.fast = self.reason is None
        self._loaders: dict[tuple[Any, Any], Callable | None] = {}
        self._dumpers: dict[bool, Callable | None] = {}
        if self.reason:
            logger.debug("schema not compiled: %s", self.reason)

    def loader(self, partial: Any, unknown: Any) -> Callable[[Any], Any] | None:
        """The generated loader for this ``partial`` and ``unknown`` (None if not compiled): raises on doubt."""
        key = (partial, unknown)
        try:
            return self._loaders[key]
        except KeyError:
            pass
        supported = any(partial is v for v in (None, False, True)) and unknown in (RAISE, EXCLUDE, INCLUDE)
        made = None
        if self.fast and supported:
            try:
                made = _build_loader(self.schema, partial, unknown)
            except Exception:  # e.g. an attribute no generated code can name: marshmallow runs it
                logger.exception("cannot compile the loader of %r", self.schema)
            else:
                made = _load_many(made) if self.schema.many else made
        self._loaders[key] = made
        return made

    def dumper(self, many: bool) -> Callable[[Any], Any] | None:
        """The generated dumper (None if not compiled): raises on doubt."""
        many = bool(many)
        if many not in self._dumpers:
            one = None
            if self.fast:
                try:
                    one = _build_dumper(self.schema)
                except Exception:
                    logger.exception("cannot compile the dumper of %r", self.schema)
            self._dumpers[many] = _dump_many(one) if one is not None and many else one
        return self._dumpers[many]

    def load(self, data: Any) -> Any:
        """Exactly ``schema.load(data)``."""
        fast = self.loader(self.schema.partial, self.schema.unknown)
        if fast is not None:
            try:
                return fast(data)
            except Exception:  # not provably fine: marshmallow decides, and raises its own error
                pass
        return self.schema.load(data)

    def validate(self, data: Any, *, partial: Any = None) -> dict:
        """Exactly ``schema.validate(data, partial=partial)``: marshmallow's messages, or ``{}``."""
        fast = self.loader(self.schema.partial if partial is None else partial, self.schema.unknown)
        if fast is not None:
            try:
                fast(data)
                return {}
            except Exception:
                pass
        return self.schema.validate(data, partial=partial)

    def dump(self, obj: Any) -> Any:
        """Exactly ``schema.dump(obj)``."""
        fast = self.dumper(self.schema.many)
        if fast is not None:
            try:
                return fast(obj)
            except Exception:
                pass
        return self.schema.dump(obj)


def _load_many(one: Callable) -> Callable:
    def load_many(data: Any) -> list:
        if type(data) is not list:
            raise GiveUp
        return [one(item) for item in data]

    return load_many


def _dump_many(one: Callable) -> Callable:
    def dump_many(obj: Any) -> list:
        return one(obj) if obj is None else [one(item) for item in obj]

    return dump_many


class _Source:
    """Lines of generated code and the names they use."""

    def __init__(self, **names: Any) -> None:
        self.lines: list[str] = []
        self.names: dict[str, Any] = {"GiveUp": GiveUp, "M": missing, **names}

    def add(self, indent: int, *lines: str) -> None:
        self.lines.extend("    " * indent + line for line in lines)

    def const(self, prefix: str, value: Any) -> str:
        """A literal for plain strings, else a name bound to ``value``."""
        if type(value) is str:
            return repr(value)
        name = f"{prefix}{len(self.names)}"
        self.names[name] = value
        return name

    def function(self, name: str) -> Callable:
        namespace = dict(self.names)
        exec(compile("\n".join(self.lines), f"<compiled {name}>", "exec"), namespace)  # noqa: S102
        return namespace[name]


def _store(src: _Source, target: str, expr: str) -> str:
    """Marshmallow's ``set_value(ret, target, value)``: dotted attributes nest."""
    if "." in target:
        return f"SET(ret, {src.const('T', target)}, {expr})"
    return f"ret[{src.const('T', target)}] = {expr}"


def _build_loader(schema: Schema, partial: Any, unknown: Any) -> Callable:
    """Generate ``load_one(data)`` for one item of ``schema``."""
    src = _Source(SET=set_value, DICT=schema.dict_class, P=partial)
    keys = [field.data_key if field.data_key is not None else name for name, field in schema.load_fields.items()]
    distinct = len(set(keys)) == len(keys)
    src.names["KEYS"] = frozenset(keys)
    src.add(0, "def load_one(data):", "    if type(data) is not dict:", "        raise GiveUp",
            "    ret = {}" if schema.dict_class is dict else "    ret = DICT()")
    count = unknown != EXCLUDE and distinct
    if count:
        src.add(1, "n = 0")
    for (name, field), key in zip(schema.load_fields.items(), keys, strict=True):
        target = field.attribute or name
        src.add(1, f"v = data.get({src.const('K', key)}, M)", "if v is M:")
        if partial is True or (not field.required and field.load_default is missing):
            src.add(2, "pass")
        elif field.required:
            src.add(2, "raise GiveUp")
        elif callable(field.load_default):
            src.add(2, f"x = {src.const('LD', field.load_default)}()", "if x is not M:",
                    "    " + _store(src, target, "x"))
        else:
            src.add(2, _store(src, target, src.const("LD", field.load_default)))
        src.add(1, "else:")
        if count:
            src.add(2, "n += 1")
        exact = (f"{src.const('D', field.deserialize)}(v, {src.const('K', key)}, data"
                 f"{', partial=P' if partial is not None else ''})")  # as Schema._deserialize calls it
        inline = INLINED.get(type(field))
        if inline is None or field_processors(field):
            src.add(2, _store(src, target, exact))
        elif condition := inline.load(field, "v"):
            src.add(2, f"if {condition}:")
            src.add(3, *check_source(src, field.validators, "v"), _store(src, target, "v"))
            src.add(2, "else:", "    " + _store(src, target, exact))
        else:
            src.add(2, _store(src, target, f"{src.const('F', field_loader(field, partial))}(v)"))
    if unknown != EXCLUDE:
        extra = "n != len(data)" if distinct else "not KEYS.issuperset(data)"
        if unknown == RAISE:
            src.add(1, f"if {extra}:", "    raise GiveUp")
        else:
            src.add(1, f"if {extra}:", "    for key in set(data) - KEYS:", "        ret[key] = data[key]")
    src.add(1, "return ret")
    return src.function("load_one")


def _build_dumper(schema: Schema) -> Callable:
    """Generate ``dump_one(obj)`` for one object of ``schema``."""
    src = _Source(GET=get_value, DICT=schema.dict_class, ACCESSOR=schema.get_attribute)
    src.add(0, "def dump_one(obj):", "    ret = {}" if schema.dict_class is dict else "    ret = DICT()",
            "    if type(obj) is dict:")
    _dump_body(src, schema, "dict")
    src.add(1, "elif hasattr(obj, '__getitem__'):")
    _dump_body(src, schema, "item")
    src.add(1, "else:")
    _dump_body(src, schema, "attr")
    src.add(1, "return ret")
    return src.function("dump_one")


def _dump_body(src: _Source, schema: Schema, access: str) -> None:
    """The per-field statements of ``dump_one`` for one way of reading ``obj``."""
    src.add(2, "pass")
    for name, field in schema.dump_fields.items():
        key = src.const("K", field.data_key if field.data_key is not None else name)
        test = INLINED.get(type(field))
        if test is None:  # a built-in not inlined: its own serialize, as Schema._serialize calls it
            src.add(2, f"x = {src.const('S', field.serialize)}({src.const('N', name)}, obj, accessor=ACCESSOR)",
                    "if x is not M:", f"    ret[{key}] = x")
            continue
        attribute = name if field.attribute is None else field.attribute
        plain = type(attribute) is str and "." not in attribute
        attr = src.const("A", attribute)
        if access == "dict" and plain:
            src.add(2, f"v = obj.get({attr}, M)")
            if hasattr(dict, attribute):  # marshmallow's get_value falls back to getattr(obj, key)
                src.add(2, "if v is M:", f"    v = getattr(obj, {attr}, M)")
        elif access == "attr" and plain:
            src.add(2, f"v = getattr(obj, {attr}, M)")
        else:
            src.add(2, f"v = GET(obj, {attr}, M)")
        default = field.dump_default
        if default is not missing:
            src.add(2, "if v is M:", f"    v = {src.const('DD', default)}{'()' if callable(default) else ''}")
        dumper = src.const("S", field_dumper(field))
        same = test.dump(field, "v")
        value = "v" if same == "True" else f"v if {same} else {dumper}(v)" if same else f"{dumper}(v)"
        if default is missing or callable(default):
            src.add(2, "if v is not M:", f"    ret[{key}] = {value}")
        else:
            src.add(2, f"ret[{key}] = {value}")
