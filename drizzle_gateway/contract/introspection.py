"""The ``__schema__`` document: the gateway's whole contract as JSON Schema.

apispec's MarshmallowPlugin turns marshmallow schemas into JSON Schema
(OpenAPI 3.1 flavour, which is JSON Schema 2020-12); named schemas land in
``components.schemas`` and are referenced with ``$ref`` from actions and
topics, as in an OpenAPI document.

Where apispec's output is not what the wire does, `_Converter` corrects it,
here and only here: one component per schema *variant* (apispec keys
components by class plus ``only``/``exclude``/``load_only``/``dump_only``/
``partial`` as left on the instance, which loses nested options and
``unknown``), ``additionalProperties`` from ``unknown``, JSON Schema's
format names, ``Decimal`` as it is taken and encoded, ``null`` where a dump
can be null, marshmallow-oneofschema's ``OneOfSchema`` as a ``oneOf`` with
its discriminator, fields that describe themselves (``json_schema``), and no
``null`` keywords.

Each variant is described from two sides: what a load takes (action
inputs, ``__publish__`` payloads) and what a dump sends (replies, events).
Where the two differ (a ``Decimal`` also takes numeric strings, a
load-only field is required in requests only, a dump can be null where a
load cannot take null), the load side is a component of its own, named
with `INPUT_SUFFIX` (``Todo`` and ``Todo-Input``); otherwise one component
serves both.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Hashable, Iterable
from typing import Any, cast

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from apispec.ext.marshmallow.common import make_schema_key, resolve_schema_instance
from apispec.ext.marshmallow.openapi import OpenAPIConverter
from marshmallow import RAISE, Schema
from marshmallow import fields as mfields

from ..wire.dialect import PROTOCOL_VERSION
from .resources import Action, Resource
from .topics import Topic

_ONE_OF: tuple[type, ...]
try:  # an optional library: its schemas can only appear where it is installed
    from marshmallow_oneofschema import OneOfSchema
    _ONE_OF = (OneOfSchema,)
except ImportError:  # pragma: no cover - the test extra installs it
    _ONE_OF = ()

_FORMAT_NAMES = {"url": "uri"}
"""apispec's format names that JSON Schema spells differently."""

_NOT_JSON_SCHEMA_FORMATS = {"ip"}
"""apispec formats JSON Schema has no name for (an IP is ipv4 or ipv6): dropped."""


ISO_DATETIME = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d(:\d\d(\.\d+)?)?)?$"
"""What a DateTime that may hold naive values dumps: ISO 8601, the offset optional."""


INPUT = "input"
OUTPUT = "output"
"""The two sides a schema is described from: what a load takes, what a dump sends."""

INPUT_SUFFIX = "-Input"
"""Added to a component's name for its load side, where that differs from its dump side."""


def _any_underscores(pattern: str) -> str:
    """``pattern`` (``~`` after each one-character atom) with underscores allowed where ``~`` stands."""
    return pattern.replace("~", "_*")


_DIGITS = "(?:[0-9]~)+"
_SIGN = "(?:[+-]~)?"
_FINITE = (f"{_SIGN}(?:{_DIGITS}(?:\\.~(?:[0-9]~)*)?|\\.~{_DIGITS})"
           f"(?:[eE]~{_SIGN}{_DIGITS})?")
_SPECIAL = f"{_SIGN}(?:[Ii]~[Nn]~[Ff]~(?:[Ii]~[Nn]~[Ii]~[Tt]~[Yy]~)?|(?:[Ss]~)?[Nn]~[Aa]~[Nn]~(?:[0-9]~)*)"

DECIMAL_TEXT = _any_underscores(f"^\\s*_*{_FINITE}\\s*$")
"""The strings ``fields.Decimal`` loads: a finite number in Python's ``Decimal`` syntax.

Whitespace around it, and underscores anywhere within it, are allowed, as
``Decimal()`` strips the one and drops the other; digits are ASCII.
"""

DECIMAL_TEXT_OR_SPECIAL = _any_underscores(f"^\\s*_*(?:{_FINITE}|{_SPECIAL})\\s*$")
"""The strings ``fields.Decimal(allow_nan=True)`` loads: `DECIMAL_TEXT`, NaN and infinities too."""


def _inner_fields(field: mfields.Field) -> list[mfields.Field]:
    if isinstance(field, mfields.List):
        return [field.inner]
    if isinstance(field, mfields.Tuple):
        return list(field.tuple_fields)
    if isinstance(field, mfields.Dict):
        return [f for f in (field.key_field, field.value_field) if f is not None]
    return []


def _field_options(field: mfields.Field) -> Hashable:
    """What a parent schema's options change on one field: its flags, and what it passes to a nested schema."""
    nested: Hashable = None
    if isinstance(field, mfields.Nested):
        only = None if field.only is None else frozenset(field.only)
        nested = (only, frozenset(field.exclude or ()), field.many)
    return (field.load_only, field.dump_only, nested, tuple(_field_options(f) for f in _inner_fields(field)))


def variant_key(schema: Schema) -> Hashable:
    """Everything that makes two instances of one schema class describe different JSON."""
    def frozen(value: Any) -> Any:
        return value if value is None or isinstance(value, (bool, str)) else frozenset(value)

    return (
        type(schema),
        frozen(schema.only),
        frozen(schema.exclude),
        frozen(schema.load_only),
        frozen(schema.dump_only),
        frozen(schema.partial),
        schema.unknown,
        tuple(sorted((name, _field_options(field)) for name, field in schema.fields.items())),
    )


def _is_one_of(schema: Any) -> bool:
    """Whether ``schema`` is a marshmallow-oneofschema ``OneOfSchema``."""
    return isinstance(schema, _ONE_OF)


def _instance(schema: Any) -> Schema:
    return schema if isinstance(schema, Schema) else schema()


# -- what differs between a load and a dump -------------------------------------------------------


def _dump_may_be_null(field: mfields.Field) -> bool:
    """Whether a dump of ``field`` can be ``null`` where a load of it cannot take ``null``.

    marshmallow's fields dump a None attribute as ``null``; what a load
    cannot take back (no ``allow_none``) does not fit the schema, but for:
    a ``dump_only`` field, which nothing reads back (a publish's check skips
    it), and a missing attribute, which dumps the field's ``dump_default``
    (``None`` included; the key is left out when there is none). NaN and
    infinities of a ``Float``/``Decimal`` with ``allow_nan`` are sent as
    ``null``. A callable ``dump_default`` is taken to return a value of the
    field's type; a ``Constant`` dumps its constant.
    """
    if field.allow_none or isinstance(field, mfields.Constant):
        return False
    if field.dump_only or field.dump_default is None:
        return True
    return isinstance(field, (mfields.Float, mfields.Decimal)) and field.allow_nan and not field.as_string


def _required(field: mfields.Field, name: str, partial: Any) -> bool:
    """Whether apispec lists ``field`` (named ``name`` in its schema) in ``required``."""
    return bool(field.required) and (not partial or (not isinstance(partial, bool) and name not in partial))


def _field_sides_differ(field: mfields.Field, seen: set[Hashable]) -> bool:
    """Whether ``field`` is described differently on the load side and the dump side."""
    if field.load_only or field.dump_only:
        return False  # a field of one side is described as that side sees it, on both
    if isinstance(field, mfields.Decimal) or _dump_may_be_null(field):
        return True
    if isinstance(field, mfields.Number) and field.as_string:
        return True
    if isinstance(field, mfields.Pluck):
        return _field_sides_differ(field.schema.fields[field.field_name], seen)
    if isinstance(field, mfields.Nested):
        return _sides_differ(field.schema, seen)
    inner = _inner_fields(field)
    if isinstance(field, mfields.Enum) and isinstance(field.field, mfields.Field):
        inner.append(field.field)
    return any(_field_sides_differ(f, seen) for f in inner)


def _sides_differ(schema: Schema, seen: set[Hashable]) -> bool:
    """Whether ``schema``, or a schema it nests, is described differently on its two sides."""
    key = variant_key(schema)
    if key in seen:
        return False  # found again through a cycle: answered where it was first met
    seen.add(key)
    if _is_one_of(schema):
        return any(_sides_differ(_instance(s), seen) for s in cast(Any, schema).type_schemas.values())
    for name, field in schema.fields.items():
        if (field.load_only or field.dump_only) and _required(field, name, schema.partial):
            return True  # required on its own side only
        if _field_sides_differ(field, seen):
            return True
    return False


def _base_name(cls: type) -> str:
    name = cls.__name__
    return name[:-6] if name.endswith("Schema") and len(name) > 6 else name


class _Variants:
    """A distinct class, hence a distinct component, for each schema variant (and side, where sides differ)."""

    def __init__(self) -> None:
        self._classes: dict[Hashable, type[Schema]] = {}
        self._bases: dict[Hashable, str] = {}
        self._differ: dict[Hashable, bool] = {}
        self._keys: dict[type[Schema], Hashable] = {}
        self.names: dict[type[Schema], str] = {}

    def _base(self, key: Hashable, base: str, plain: bool) -> str:
        """The component name of the variant ``key``: ``base`` for a plain variant, numbered for the others."""
        if key not in self._bases:
            taken = set(self._bases.values())
            if not plain or base in taken:
                n = 2
                while f"{base}{n}" in taken:
                    n += 1
                base = f"{base}{n}"
            self._bases[key] = base
        return self._bases[key]

    @staticmethod
    def _plain_key(cls: type[Schema]) -> Hashable:
        try:
            return variant_key(cls())
        except Exception:  # a schema that needs constructor arguments has no plain variant
            return None

    def sides_differ(self, schema: Schema, key: Hashable) -> bool:
        """Whether the variant ``key`` of ``schema`` needs a component for each side."""
        if key not in self._differ:
            self._differ[key] = _sides_differ(schema, set())
        return self._differ[key]

    def _class(self, key: Hashable, cls: type[Schema], name: str, *, bare: bool,
               extra: dict[str, Any] | None = None) -> type[Schema]:
        """The class standing for ``key``: ``cls`` itself if ``bare`` and it stands for nothing yet, else a subclass."""
        variant = self._classes.get(key)
        if variant is None:
            if cls in self.names or not bare or extra:
                meta = type("Meta", (getattr(cls, "Meta", object),), {"register": False})
                variant = type(cls.__name__, (cls,), {"Meta": meta, "__module__": cls.__module__, **(extra or {})})
            else:
                variant = cls
            self._classes[key] = variant
            self.names[variant] = name
        return variant

    @staticmethod
    def _as(schema: Schema, variant: type[Schema]) -> Schema:
        if type(schema) is variant:
            return schema
        proxy = copy.copy(schema)
        proxy.__class__ = variant
        return proxy

    def of(self, schema: Schema, side: str) -> Schema:
        """``schema``, or a copy of it whose class stands for its variant as ``side`` sees it."""
        key = variant_key(schema)
        cls = type(schema)
        plain = key == self._plain_key(cls)
        base = self._base(key, _base_name(cls), plain)
        split = self.sides_differ(schema, key)
        name = base + (INPUT_SUFFIX if split and side == INPUT else "")
        variant = self._class((key, side) if split else key, cls, name, bare=plain)
        self._keys[variant] = key
        return self._as(schema, variant)

    def branch(self, one_of: Any, value: Any, schema: Schema, side: str) -> Schema:
        """The type schema ``schema`` as ``one_of`` loads and dumps it for type ``value``: a component of its own.

        It takes ``one_of``'s ``unknown`` (``OneOfSchema.load`` passes its own)
        and has the type field, ``value`` and required.
        """
        parent = self._keys[type(one_of)]
        key = ("branch", parent, value)
        split = self.sides_differ(schema, variant_key(schema))
        base = self._base(key, f"{self._bases[parent]}_{re.sub(r'[^A-Za-z0-9_.]', '_', str(value))}", True)
        name = base + (INPUT_SUFFIX if split and side == INPUT else "")
        full_key = (key, side) if split else key
        variant = self._class(full_key, type(schema), name, bare=False,
                              extra={"_drizzle_type_field": (one_of.type_field, value)})
        branch = self._as(schema, variant)
        branch.unknown = one_of.unknown
        branch.many = False
        return branch


def _clean(node: dict) -> dict:
    return {key: value for key, value in node.items() if value is not None}


def field2json_schema(self: OpenAPIConverter, field: mfields.Field, ret: dict, **kwargs: Any) -> dict:
    """A field's own description, its ``json_schema`` (a dict, or a method returning one): an attribute function.

    What the field's ``metadata`` says wins, as it does for apispec's built-in
    fields; ``allow_none`` adds ``null`` to the type given.
    """
    own = getattr(field, "json_schema", None)
    if own is None:
        return {}
    described = own() if callable(own) else own
    if not isinstance(described, dict):
        raise TypeError(f"{type(field).__name__}.json_schema must be (or return) a dict, not {described!r}")
    result = {key: copy.deepcopy(value) for key, value in described.items() if key not in field.metadata}
    if "type" in result and field.allow_none:
        result["type"] = _nullable(result["type"])
    return result


class _Converter(OpenAPIConverter):
    """apispec's converter, with its output corrected to match what the wire does (see module docs)."""

    variants: _Variants
    side: str = OUTPUT
    """The side described now: the components a schema nests are described from the same side."""

    def init_attribute_functions(self) -> None:
        super().init_attribute_functions()
        self.add_attribute_function(field2json_schema)

    def resolve_nested_schema(self, schema: Any) -> Any:
        if isinstance(schema, str):
            return super().resolve_nested_schema(schema)
        variant = self.variants.of(resolve_schema_instance(schema), self.side)
        if _is_one_of(variant):
            return self._one_of(variant)
        return super().resolve_nested_schema(variant)

    def _one_of(self, schema: Any) -> dict:
        """A ``OneOfSchema``: ``oneOf`` its type schemas, each with its type field, and the discriminator."""
        key = make_schema_key(schema)
        if key not in self.refs:
            name = self.variants.names[type(schema)]
            self.refs[key] = name  # before the branches: a branch may nest this schema again
            refs = {value: super(_Converter, self).resolve_nested_schema(
                self.variants.branch(schema, value, _instance(type_schema), self.side))
                for value, type_schema in schema.type_schemas.items()}
            self.spec.components.schema(name, component={
                "oneOf": list(refs.values()),
                "discriminator": {"propertyName": schema.type_field,
                                  "mapping": {str(value): ref["$ref"] for value, ref in refs.items()}},
            })
        return self.get_ref_dict(schema)

    def schema2jsonschema(self, schema: Any) -> dict:
        jsonschema = super().schema2jsonschema(schema)
        instance = resolve_schema_instance(schema)
        # apispec skips this when Meta has a description; EXCLUDE accepts (and drops) unknown keys.
        jsonschema["additionalProperties"] = instance.unknown != RAISE
        other_side = (lambda f: f.dump_only) if self.side == INPUT else (lambda f: f.load_only)
        elsewhere = {field.data_key or name for name, field in instance.fields.items() if other_side(field)}
        required = [name for name in jsonschema.pop("required", []) if name not in elsewhere]
        type_field = getattr(type(instance), "_drizzle_type_field", None)
        if type_field is not None:  # a OneOfSchema's type schema: what it loads and dumps has the type
            jsonschema["properties"][type_field[0]] = {"const": type_field[1]}
            required = sorted({*required, type_field[0]})
        if required:
            jsonschema["required"] = required
        return jsonschema

    def field2property(self, field: mfields.Field) -> dict:
        side = self.side
        if field.load_only or field.dump_only:  # a field of one side is described as that side sees it
            self.side = INPUT if field.load_only else OUTPUT
        try:
            prop = self._field2property(field)
        finally:
            self.side = side
        return prop

    def _field2property(self, field: mfields.Field) -> dict:
        prop = _clean(super().field2property(field))
        fmt = prop.get("format")
        if fmt in _FORMAT_NAMES:
            prop["format"] = _FORMAT_NAMES[fmt]
        elif fmt in _NOT_JSON_SCHEMA_FORMATS:
            del prop["format"]
        if isinstance(field, mfields.Number) and field.as_string and self.side == OUTPUT:
            prop["type"] = _with_null(prop.get("type"), "string")  # dumped as text: "1.10" (and loaded as a number)
        if isinstance(field, (mfields.IPInterface, mfields.IPv4Interface, mfields.IPv6Interface)):
            prop.setdefault("type", "string")  # "10.0.0.1/8"; apispec leaves it untyped
        if isinstance(field, mfields.Tuple):
            items = [self.field2property(f) for f in field.tuple_fields]
            # apispec leaves tuples untyped. "items" is {"not": {}} (no further item), as false would be:
            # apispec takes a non-dict "items" for a schema's name and writes a $ref to "False".
            prop.update(type=_with_null(prop.get("type"), "array"), prefixItems=items, items={"not": {}},
                        minItems=len(items), maxItems=len(items))
        if isinstance(field, mfields.Constant):
            prop.pop("default", None)  # apispec calls the constant a default; it is all that is ever sent
            prop["const"] = field.constant
        self._temporal(field, prop)
        if self.side == INPUT and isinstance(field, mfields.Decimal):
            # a number, or the digits as a string (docs/protocol.md: how exact decimals are sent)
            prop["type"] = _with_null(prop.get("type"), ["number", "string"])
            prop["pattern"] = DECIMAL_TEXT_OR_SPECIAL if field.allow_nan else DECIMAL_TEXT
        elif self.side == OUTPUT and _dump_may_be_null(field):
            prop = _add_null(prop)
        return prop

    @staticmethod
    def _temporal(field: mfields.Field, prop: dict) -> None:
        """Dates, times and date-times as marshmallow sends them (on marshmallow 3, Date and Time are DateTimes)."""
        if isinstance(field, (mfields.Date, mfields.Time)) or not isinstance(field, mfields.DateTime):
            if isinstance(field, (mfields.Date, mfields.Time)) and field.format not in (None, "iso", "iso8601"):
                prop.pop("format", None)  # a strftime format is not JSON Schema's date
                prop.pop("pattern", None)
                if field.format not in ("rfc", "rfc822"):
                    prop["x-strftime"] = field.format
            return
        if field.format in ("timestamp", "timestamp_ms"):
            prop["type"] = _with_null(prop.get("type"), "number")
            prop.pop("format", None)
            # apispec adds a string "example" and "min", which is no JSON Schema keyword (and times before 1970 are < 0)
            prop.pop("example", None)
            prop.pop("min", None)
        elif not isinstance(field, mfields.AwareDateTime) and field.format in (None, "iso", "iso8601"):
            # JSON Schema's date-time needs an offset; a naive datetime is dumped without one
            prop.pop("format", None)
            prop["pattern"] = ISO_DATETIME
        elif field.format not in (None, "iso", "iso8601"):
            prop.pop("format", None)  # a strftime format ("rfc" too) is not JSON Schema's date-time
            prop.pop("pattern", None)
            if field.format not in ("rfc", "rfc822"):
                prop["x-strftime"] = field.format


def _with_null(current: Any, kind: str | list[str]) -> Any:
    """``kind`` as the type, keeping ``null`` if ``current`` allowed it."""
    return _nullable(kind) if isinstance(current, list) and "null" in current else kind


def _nullable(kind: Any) -> list:
    """A type that also allows ``null``."""
    kinds = list(kind) if isinstance(kind, list) else [kind]
    return kinds if "null" in kinds else [*kinds, "null"]


def _add_null(prop: dict) -> dict:
    """``prop`` that also allows ``null`` (an untyped one does already)."""
    if "$ref" in prop:
        ref = {"$ref": prop.pop("$ref")}
        return {**prop, "anyOf": [ref, {"type": "null"}]}
    if "type" in prop:
        prop["type"] = _nullable(prop["type"])
    if "enum" in prop and None not in prop["enum"]:
        prop["enum"] = [*prop["enum"], None]
    if "const" in prop and prop["const"] is not None:
        prop["enum"] = [prop.pop("const"), None]
    return prop


class _Plugin(MarshmallowPlugin):
    Converter = _Converter

    def __init__(self) -> None:
        self.variants = _Variants()
        super().__init__(schema_name_resolver=self._name)

    def _name(self, schema: Any) -> str:
        return self.variants.names[type(resolve_schema_instance(schema))]

    def init_spec(self, spec: APISpec) -> None:
        super().init_spec(spec)
        assert isinstance(self.converter, _Converter)
        self.converter.variants = self.variants


class _Describer:
    """Collects schemas into one apispec document while describing the contract."""

    def __init__(self, title: str) -> None:
        self.plugin = _Plugin()
        self.spec = APISpec(title=title, version="1", openapi_version="3.1.0", plugins=[self.plugin])

    def schema(self, schema: Schema | None, side: str) -> dict | None:
        """The ``$ref`` (or array of them) of ``schema`` as ``side`` sees it, its components collected."""
        if schema is None:
            return None
        assert self.plugin.resolver is not None  # made by the plugin's init_spec, in APISpec's constructor
        assert isinstance(self.plugin.converter, _Converter)
        self.plugin.converter.side = side
        return self.plugin.resolver.resolve_schema_dict(schema)

    def action(self, act: Action) -> dict:
        return {
            "name": act.name,
            "description": act.doc,
            "input": self.schema(act.input, INPUT),
            "output": self.schema(act.output.schema if act.output else None, OUTPUT),
            "stream": act.stream,
        }

    def resource(self, resource: type[Resource]) -> dict:
        return {
            "name": resource.name,
            "description": (resource.__doc__ or "").strip(),
            "actions": [self.action(act) for _, act in sorted(resource.actions.items())],
        }

    def topic(self, topic: Topic) -> dict:
        return {
            "name": topic.pattern,
            "params": list(topic.params),
            "description": topic.description,
            "payload": self.schema(topic.schema, OUTPUT),
            "publish": self.schema(topic.schema, INPUT) if topic.client_publish else None,
            "client_subscribe": topic.client_subscribe,
            "client_publish": topic.client_publish,
            "history": None if topic.history is None else {"size": topic.history.size, "ttl": topic.history.ttl},
            "presence": None if topic.presence is None else {
                "member": self.schema(topic.presence.schema, OUTPUT),
                "input": self.schema(topic.presence.schema, INPUT) if topic.presence.client else None,
                "key": topic.presence.key,
                "client_presence": topic.presence.client,
            },
        }

    def components(self) -> dict:
        return {"schemas": self.spec.to_dict().get("components", {}).get("schemas", {})}


def describe(
    title: str,
    resources: Iterable[type[Resource]],
    topics: Iterable[Topic],
    builtins: type[Resource],
) -> dict[str, Any]:
    """The ``__schema__`` reply for a gateway with these resources and topics."""
    describer = _Describer(title)
    return {
        "protocol": PROTOCOL_VERSION,
        "title": title,
        "resources": [describer.resource(r) for r in resources],
        "builtins": [describer.action(act) for _, act in sorted(builtins.actions.items())],
        "topics": [describer.topic(t) for t in topics],
        "components": describer.components(),
    }
