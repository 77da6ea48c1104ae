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
format names, ``Decimal`` as it is encoded, and no ``null`` keywords.
"""

from __future__ import annotations

import copy
from collections.abc import Hashable, Iterable
from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from apispec.ext.marshmallow.common import resolve_schema_instance
from apispec.ext.marshmallow.openapi import OpenAPIConverter
from marshmallow import RAISE, Schema
from marshmallow import fields as mfields

from ..wire.dialect import PROTOCOL_VERSION
from .resources import Action, Resource
from .topics import Topic

_FORMAT_NAMES = {"url": "uri"}
"""apispec's format names that JSON Schema spells differently."""

_NOT_JSON_SCHEMA_FORMATS = {"ip"}
"""apispec formats JSON Schema has no name for (an IP is ipv4 or ipv6): dropped."""


ISO_DATETIME = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d(:\d\d(\.\d+)?)?)?$"
"""What a DateTime that may hold naive values dumps: ISO 8601, the offset optional."""


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


def _base_name(cls: type) -> str:
    name = cls.__name__
    return name[:-6] if name.endswith("Schema") and len(name) > 6 else name


class _Variants:
    """A distinct class, hence a distinct component, for each schema variant."""

    def __init__(self) -> None:
        self._classes: dict[Hashable, type[Schema]] = {}
        self.names: dict[type[Schema], str] = {}

    def _name(self, cls: type[Schema], key: Hashable) -> str:
        """The class's name (less "Schema") for its plain variant; numbered names for the others."""
        taken = set(self.names.values())
        base = _base_name(cls)
        if key == self._plain_key(cls) and base not in taken:
            return base
        n = 2
        while f"{base}{n}" in taken:
            n += 1
        return f"{base}{n}"

    @staticmethod
    def _plain_key(cls: type[Schema]) -> Hashable:
        try:
            return variant_key(cls())
        except Exception:  # a schema that needs constructor arguments has no plain variant
            return None

    def of(self, schema: Schema) -> Schema:
        """``schema``, or a copy of it whose class stands for its variant."""
        key = variant_key(schema)
        cls = type(schema)
        variant = self._classes.get(key)
        if variant is None:
            if cls in self.names or key != self._plain_key(cls):
                meta = type("Meta", (getattr(cls, "Meta", object),), {"register": False})
                variant = type(cls.__name__, (cls,), {"Meta": meta, "__module__": cls.__module__})
            else:
                variant = cls
            self._classes[key] = variant
            self.names[variant] = self._name(cls, key)
        if variant is cls:
            return schema
        proxy = copy.copy(schema)
        proxy.__class__ = variant
        return proxy


def _clean(node: dict) -> dict:
    return {key: value for key, value in node.items() if value is not None}


class _Converter(OpenAPIConverter):
    """apispec's converter, with its output corrected to match what the wire does (see module docs)."""

    variants: _Variants

    def resolve_nested_schema(self, schema: Any) -> Any:
        if isinstance(schema, str):
            return super().resolve_nested_schema(schema)
        return super().resolve_nested_schema(self.variants.of(resolve_schema_instance(schema)))

    def schema2jsonschema(self, schema: Any) -> dict:
        jsonschema = super().schema2jsonschema(schema)
        unknown = resolve_schema_instance(schema).unknown
        # apispec skips this when Meta has a description; EXCLUDE accepts (and drops) unknown keys.
        jsonschema["additionalProperties"] = unknown != RAISE
        return jsonschema

    def field2property(self, field: mfields.Field) -> dict:
        prop = _clean(super().field2property(field))
        fmt = prop.get("format")
        if fmt in _FORMAT_NAMES:
            prop["format"] = _FORMAT_NAMES[fmt]
        elif fmt in _NOT_JSON_SCHEMA_FORMATS:
            del prop["format"]
        if isinstance(field, mfields.Decimal) and field.as_string:
            prop["type"] = _with_null(prop.get("type"), "string")  # dumped as text: "1.10"
        if isinstance(field, (mfields.Float, mfields.Decimal)) and field.allow_nan and not field.as_string:
            prop["type"] = _nullable(prop.get("type", "number"))  # NaN and infinities are sent as null
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
        if isinstance(field, mfields.DateTime) and field.format in ("timestamp", "timestamp_ms"):
            prop["type"] = _with_null(prop.get("type"), "number")
            prop.pop("format", None)
            # apispec adds a string "example" and "min", which is no JSON Schema keyword (and times before 1970 are < 0)
            prop.pop("example", None)
            prop.pop("min", None)
        elif isinstance(field, mfields.DateTime) and not isinstance(field, mfields.AwareDateTime) and \
                field.format in (None, "iso", "iso8601"):
            # JSON Schema's date-time needs an offset; a naive datetime is dumped without one
            prop.pop("format", None)
            prop["pattern"] = ISO_DATETIME
        elif isinstance(field, (mfields.DateTime, mfields.Date, mfields.Time)) and \
                field.format not in (None, "iso", "iso8601"):
            prop.pop("format", None)  # a strftime format ("rfc" too) is not JSON Schema's date-time or date
            prop.pop("pattern", None)
            if field.format not in ("rfc", "rfc822"):
                prop["x-strftime"] = field.format
        return prop


def _with_null(current: Any, kind: str) -> Any:
    """``kind`` as the type, keeping ``null`` if ``current`` allowed it."""
    return _nullable(kind) if isinstance(current, list) and "null" in current else kind


def _nullable(kind: Any) -> list:
    """A type that also allows ``null``."""
    kinds = kind if isinstance(kind, list) else [kind]
    return kinds if "null" in kinds else [*kinds, "null"]


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

    def schema(self, schema: Schema | None) -> dict | None:
        if schema is None:
            return None
        assert self.plugin.resolver is not None  # made by the plugin's init_spec, in APISpec's constructor
        return self.plugin.resolver.resolve_schema_dict(schema)

    def action(self, act: Action) -> dict:
        return {
            "name": act.name,
            "description": act.doc,
            "input": self.schema(act.input),
            "output": self.schema(act.output.schema if act.output else None),
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
            "payload": self.schema(topic.schema),
            "client_subscribe": topic.client_subscribe,
            "client_publish": topic.client_publish,
            "history": None if topic.history is None else {"size": topic.history.size, "ttl": topic.history.ttl},
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
