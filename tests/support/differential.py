"""The differential suite's cases: one schema per built-in field type and option, values to try, and the oracle.

Each `Case` puts one field (``value``) next to an ``Int`` with a
``data_key`` (``otherKey``) in a schema of its own, served by a resource
named after the case (``dump`` returns the object it is given,
``roundtrip`` loads input and dumps it back) and a topic of the same name.
`render` is rule 1 of docs/protocol.md written independently of the
gateway's encoder; `same_json` compares a client's reading of the wire with
marshmallow's output rendered by it, digit for digit where it matters.
"""

from __future__ import annotations

import datetime as dt
import enum
import ipaddress
import math
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import orjson
from hypothesis import strategies as st
from hypothesis.provisional import urls
from marshmallow import EXCLUDE, INCLUDE, RAISE, Schema, fields, post_dump, post_load, pre_dump, pre_load, validate

from drizzle_gateway import Gateway, Resource, Topic, action


class Color(enum.Enum):
    RED = "red"
    GREEN = "green"


class Level(enum.Enum):
    LOW = 1
    HIGH = 2


class Inner(Schema):
    name = fields.Str(required=True)
    n = fields.Int(data_key="N")


class Tree(Schema):
    label = fields.Str()
    child = fields.Nested(lambda: Tree)
    kids = fields.List(fields.Nested(lambda: Tree))


def _method_schema_value(obj: Any) -> Any:
    value = obj.get("value") if isinstance(obj, dict) else getattr(obj, "value", None)
    return None if value is None else len(str(value))


@dataclass
class Case:
    """One field type with one set of options: a field factory and the Python values it dumps."""

    id: str
    make: Callable[[], fields.Field]
    values: st.SearchStrategy
    samples: list = field(default_factory=list)
    """A few values for the over-the-socket run (edge cases first)."""
    methods: dict = field(default_factory=dict)
    deeper: tuple[tuple[str, ...], tuple[str, ...]] | None = None
    """A selection into the field, as wire names and as marshmallow's ``only=`` names."""

    @property
    def selections(self) -> list[tuple[tuple[str, ...], tuple[str, ...]]]:
        """(wire ``fields``, marshmallow ``only``) pairs to compare replies, events and marshmallow on."""
        pairs = [(("value",), ("value",)), (("otherKey",), ("other",))]
        return [*pairs, self.deeper] if self.deeper else pairs


tz_datetimes = st.datetimes(min_value=dt.datetime(1900, 1, 1), max_value=dt.datetime(2200, 1, 1),
                            timezones=st.sampled_from([dt.UTC, dt.timezone(dt.timedelta(hours=5, minutes=30))]))
naive_datetimes = st.datetimes(min_value=dt.datetime(1900, 1, 1), max_value=dt.datetime(2200, 1, 1))
json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text()
json_values = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=3)
                           | st.dictionaries(st.text(max_size=5), inner, max_size=3), max_leaves=8)
inner_objects = st.fixed_dictionaries({"name": st.text(max_size=8)}, optional={"n": st.integers()})
trees = st.recursive(st.fixed_dictionaries({"label": st.text(max_size=4)}),
                     lambda sub: st.fixed_dictionaries({"label": st.text(max_size=4)},
                                                       optional={"child": sub, "kids": st.lists(sub, max_size=2)}),
                     max_leaves=6)
ip_interfaces_v4 = st.builds(lambda a, p: ipaddress.ip_interface(f"{a}/{p}"), st.ip_addresses(v=4),
                             st.integers(0, 32))
ip_interfaces_v6 = st.builds(lambda a, p: ipaddress.ip_interface(f"{a}/{p}"), st.ip_addresses(v=6),
                             st.integers(0, 128))
BIG = 2**70 + 1
SAMPLE_DECIMALS = [Decimal("1.10"), Decimal("12345678901234567890.123456789"), Decimal("-0"), Decimal("1E+2"),
                   Decimal("NaN"), Decimal("-Infinity")]
SAMPLE_TIME = dt.datetime(2024, 2, 29, 23, 59, 58, 123456, tzinfo=dt.UTC)

CASES: tuple[Case, ...] = (
    Case("str", fields.Str, st.text(), ["ünïcødé 😀", "\u2028", ""]),
    Case("str_surrogate", fields.Str, st.text(st.characters(codec=None, categories=["Cs", "L"])),
         ["\ud800", "a\udfffb"]),
    Case("int", fields.Int, st.integers(), [BIG, -BIG, 0]),
    Case("int_strict", lambda: fields.Int(strict=True), st.integers(), [7]),
    Case("float", fields.Float, st.floats(), [0.1, 1e300, float("nan"), float("inf"), -0.0]),
    Case("float_allow_nan", lambda: fields.Float(allow_nan=True), st.floats(), [float("nan")]),
    Case("decimal", fields.Decimal, st.decimals(), SAMPLE_DECIMALS),
    Case("decimal_as_string", lambda: fields.Decimal(as_string=True), st.decimals(), SAMPLE_DECIMALS),
    Case("decimal_places", lambda: fields.Decimal(places=2), st.decimals(allow_nan=False, allow_infinity=False,
                                                                          min_value=-10**9, max_value=10**9),
         [Decimal("1.005"), Decimal("3")]),
    Case("bool", fields.Bool, st.booleans() | st.sampled_from([0, 1, "yes", "off"]), [True, False]),
    Case("datetime", fields.DateTime, tz_datetimes | naive_datetimes, [SAMPLE_TIME]),
    Case("datetime_rfc", lambda: fields.DateTime(format="rfc"), tz_datetimes, [SAMPLE_TIME]),
    Case("datetime_timestamp", lambda: fields.DateTime(format="timestamp"), tz_datetimes, [SAMPLE_TIME]),
    Case("datetime_timestamp_ms", lambda: fields.DateTime(format="timestamp_ms"), tz_datetimes, [SAMPLE_TIME]),
    Case("datetime_strftime", lambda: fields.DateTime(format="%Y-%m-%d %H:%M"), naive_datetimes, [SAMPLE_TIME]),
    Case("naive_datetime", fields.NaiveDateTime, naive_datetimes, [SAMPLE_TIME.replace(tzinfo=None)]),
    Case("aware_datetime", lambda: fields.AwareDateTime(default_timezone=dt.UTC), tz_datetimes, [SAMPLE_TIME]),
    Case("date", fields.Date, st.dates(), [SAMPLE_TIME.date()]),
    Case("date_format", lambda: fields.Date(format="%d/%m/%Y"), st.dates(min_value=dt.date(1000, 1, 1)),
         [SAMPLE_TIME.date()]),
    Case("time", fields.Time, st.times(), [SAMPLE_TIME.time()]),
    Case("time_format", lambda: fields.Time(format="%H:%M"), st.times(), [SAMPLE_TIME.time()]),
    Case("timedelta", fields.TimeDelta, st.timedeltas(min_value=dt.timedelta(days=-10**6),
                                                      max_value=dt.timedelta(days=10**6)),
         [dt.timedelta(seconds=1.5)]),
    Case("timedelta_ms", lambda: fields.TimeDelta(precision="milliseconds"),
         st.timedeltas(min_value=dt.timedelta(days=-10**6), max_value=dt.timedelta(days=10**6)),
         [dt.timedelta(microseconds=1)]),
    Case("uuid", fields.UUID, st.uuids(), [uuid.UUID(int=1)]),
    Case("email", fields.Email, st.emails(), ["ada@example.com"]),
    Case("url", fields.Url, urls(), ["https://example.com/a?b=c"]),
    Case("ip", fields.IP, st.ip_addresses(), [ipaddress.ip_address("::1")]),
    Case("ipv4", fields.IPv4, st.ip_addresses(v=4), [ipaddress.ip_address("10.0.0.1")]),
    Case("ipv6", fields.IPv6, st.ip_addresses(v=6), [ipaddress.ip_address("fe80::1")]),
    Case("ip_interface", fields.IPInterface, ip_interfaces_v4 | ip_interfaces_v6,
         [ipaddress.ip_interface("10.0.0.1/8")]),
    Case("ipv4_interface", fields.IPv4Interface, ip_interfaces_v4, [ipaddress.ip_interface("10.0.0.1/8")]),
    Case("ipv6_interface", fields.IPv6Interface, ip_interfaces_v6, [ipaddress.ip_interface("::1/64")]),
    Case("enum_by_name", lambda: fields.Enum(Color), st.sampled_from(Color), [Color.RED]),
    Case("enum_by_value", lambda: fields.Enum(Level, by_value=True), st.sampled_from(Level), [Level.HIGH]),
    Case("enum_by_value_field", lambda: fields.Enum(Color, by_value=fields.Str()), st.sampled_from(Color),
         [Color.GREEN]),
    Case("list", lambda: fields.List(fields.Int()), st.lists(st.integers(), max_size=4), [[1, BIG]]),
    Case("list_of_decimals", lambda: fields.List(fields.Decimal()), st.lists(st.decimals(), max_size=3),
         [SAMPLE_DECIMALS]),
    Case("tuple", lambda: fields.Tuple((fields.Str(), fields.Int())), st.tuples(st.text(), st.integers()),
         [("a", 1)]),
    Case("dict", lambda: fields.Dict(keys=fields.Str(), values=fields.Int()),
         st.dictionaries(st.text(max_size=5), st.integers(), max_size=3), [{"a": 1}]),
    Case("dict_int_keys", lambda: fields.Dict(keys=fields.Int(), values=fields.Decimal()),
         st.dictionaries(st.integers(), st.decimals(), max_size=3), [{BIG: Decimal("0.5"), -1: Decimal("NaN")}]),
    Case("dict_raw", fields.Dict, st.dictionaries(st.text(max_size=5), json_values, max_size=3), [{"a": [1]}]),
    Case("nested", lambda: fields.Nested(Inner), inner_objects, [{"name": "x", "n": 1}],
         deeper=(("value.N", "otherKey"), ("value.n", "other"))),
    Case("nested_many", lambda: fields.Nested(Inner, many=True), st.lists(inner_objects, max_size=3),
         [[{"name": "x"}]], deeper=(("value.N",), ("value.n",))),
    Case("list_nested", lambda: fields.List(fields.Nested(Inner)), st.lists(inner_objects, max_size=3),
         [[{"name": "y", "n": 2}]], deeper=(("value.name",), ("value.name",))),
    Case("nested_self", lambda: fields.Nested(Tree), trees, [{"label": "a", "child": {"label": "b"}}],
         deeper=(("value.child.label", "value.kids.kids.label"), ("value.child.label", "value.kids.kids.label"))),
    Case("pluck", lambda: fields.Pluck(Inner, "name"), inner_objects, [{"name": "p"}]),
    Case("pluck_many", lambda: fields.Pluck(Inner, "n", many=True), st.lists(inner_objects, max_size=3),
         [[{"name": "p", "n": 3}]]),
    Case("method", lambda: fields.Method("size", deserialize="size_in"), json_scalars, ["abc"],
         {"size": lambda self, obj: _method_schema_value(obj), "size_in": lambda self, value: value}),
    Case("function", lambda: fields.Function(lambda obj: _method_schema_value(obj), deserialize=lambda v: v),
         json_scalars, [12345]),
    Case("constant", lambda: fields.Constant(Decimal("42.00")), json_scalars, [None]),
    Case("raw", fields.Raw, json_values, [{"a": [1, 2.5, None]}]),
)


def case_schema(case: Case) -> type[Schema]:
    """The schema of one case: ``value`` (the case's field) and ``other`` (an Int sent as ``otherKey``)."""
    attrs = {"value": case.make(), "other": fields.Int(data_key="otherKey"), **case.methods,
             "Meta": type("Meta", (), {"register": False})}
    return type(f"Case_{case.id}", (Schema,), attrs)


class Hooked(Schema):
    """Hooks on both sides, a validator, a data_key and a load-only field."""

    class Meta:
        register = False

    name = fields.Str(required=True, validate=validate.Length(max=10))
    total = fields.Decimal(data_key="Total")
    secret = fields.Str(load_only=True)
    tags = fields.List(fields.Str())

    @pre_dump
    def from_object(self, obj: Any, **kwargs) -> Any:
        return {**obj, "tags": sorted(obj.get("tags", []))} if isinstance(obj, dict) else obj

    @post_dump
    def stamp(self, data: dict, **kwargs) -> dict:
        return {**data, "kind": "hooked", "count": len(data)}

    @pre_load
    def strip_kind(self, data: Any, **kwargs) -> Any:
        return {k: v for k, v in data.items() if k not in ("kind", "count")} if isinstance(data, dict) else data

    @post_load
    def mark(self, data: dict, **kwargs) -> dict:
        return {**data, "tags": [*data.get("tags", []), "loaded"]}


hooked_objects = st.fixed_dictionaries(
    {"name": st.text(max_size=12)},
    optional={"total": st.decimals(allow_nan=False, allow_infinity=False), "secret": st.text(max_size=3),
              "tags": st.lists(st.text(max_size=3), max_size=3)})

POLICIES = {"raise": RAISE, "exclude": EXCLUDE, "include": INCLUDE}


def _echo(self: Resource, data: Any) -> Any:
    return data


def _resource(name: str, schema: type[Schema]) -> type[Resource]:
    def dump(self, data):
        return self.gateway.state["objects"][name]

    def declare(func: Callable, **options: Any) -> Callable:
        def method(self, data):  # a function object of its own per action
            return func(self, data)
        return action(**options)(method)

    attrs: dict[str, Any] = {
        "name": name,
        "dump": declare(dump, output=schema, name="dump"),
        "roundtrip": declare(_echo, input=schema, output=schema, name="roundtrip"),
    }
    for policy, unknown in POLICIES.items():
        for partial in (False, True):
            variant = schema(unknown=unknown, partial=partial)
            action_name = f"load_{policy}_{int(partial)}"
            attrs[action_name] = declare(_echo, input=variant, output=variant, name=action_name)
    return type(f"{name}_resource", (Resource,), attrs)


def make_gateway() -> Gateway:
    """One gateway serving every case: resource and topic ``case.<id>``, plus ``hooked``."""
    gateway = Gateway(title="differential")
    gateway.state["objects"] = {}
    gateway.state["schemas"] = {}
    for case in CASES:
        schema = case_schema(case)
        name = f"case_{case.id}"
        gateway.state["schemas"][name] = schema
        gateway.add_resource(_resource(name, schema))
        gateway.add_topic(Topic(name, schema, client_publish=True))
    gateway.state["schemas"]["hooked"] = Hooked
    gateway.add_resource(_resource("hooked", Hooked))
    gateway.add_topic(Topic("hooked", Hooked))
    return gateway


# -- rule 1, written out independently -------------------------------------------


def render(value: Any) -> Any:
    """What rule 1 says a dumped value becomes, as exact JSON data (numbers kept as Python numbers)."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, Decimal):
        return value if value.is_finite() else None
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, int):
        return int(value)
    if isinstance(value, enum.Enum):
        return render(value.value)
    if isinstance(value, dict):
        return {_key(k): render(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [render(item) for item in value]
    return orjson.loads(orjson.dumps(value))  # datetime, UUID...: as orjson writes them


def _key(key: Any) -> str:
    if isinstance(key, str):
        return key
    if isinstance(key, bool) or key is None:
        return orjson.dumps(key).decode()
    if isinstance(key, int):
        return str(int(key))
    return orjson.loads(orjson.dumps({key: 0}, option=orjson.OPT_NON_STR_KEYS)).popitem()[0]


def _number_text(value: Any) -> str:
    if isinstance(value, float):
        return orjson.dumps(value).decode()
    return str(value)


def same_json(wire: Any, expected: Any) -> bool:
    """``wire`` (a client's reading) carries exactly ``expected`` (a `render` result)."""
    if isinstance(expected, bool) or expected is None or isinstance(expected, str):
        return type(wire) is type(expected) and wire == expected
    if isinstance(expected, Decimal):
        return not isinstance(wire, bool) and isinstance(wire, (int, float, Decimal)) and \
            _number_text(wire) == str(expected)
    if isinstance(expected, float):
        return not isinstance(wire, bool) and isinstance(wire, (int, float, Decimal)) and float(wire) == expected \
            and isinstance(wire, (float, Decimal))
    if isinstance(expected, int):
        return not isinstance(wire, bool) and isinstance(wire, (int, Decimal)) and wire == expected
    if isinstance(expected, list):
        return isinstance(wire, list) and len(wire) == len(expected) and all(map(same_json, wire, expected))
    if isinstance(expected, dict):
        return isinstance(wire, dict) and wire.keys() == expected.keys() and all(
            same_json(wire[k], v) for k, v in expected.items())
    raise AssertionError(f"render() gave {expected!r}")


class Composite(Schema):
    """Fields of several kinds, to declare ``only``/``exclude``/``load_only`` on and select from."""

    class Meta:
        register = False

    a = fields.Str()
    b = fields.Int(data_key="B")
    c = fields.Nested(Inner)
    d = fields.List(fields.Nested(Inner))
    e = fields.Str(load_only=True)
    f = fields.Decimal(dump_only=True)


COMPOSITE_PATHS = {"a": "a", "B": "b", "c": "c", "c.name": "c.name", "c.N": "c.n", "d": "d", "d.name": "d.name",
                   "d.N": "d.n", "e": "e", "f": "f"}
"""Every wire path of `Composite` (the load-only ``e`` included) and its attribute path."""

composite_objects = st.fixed_dictionaries({}, optional={
    "a": st.text(max_size=4), "b": st.integers(), "c": inner_objects, "d": st.lists(inner_objects, max_size=2),
    "e": st.text(max_size=2), "f": st.decimals(allow_nan=False)})
composite_declarations = st.one_of(
    st.fixed_dictionaries({"exclude": st.sets(st.sampled_from(["a", "c", "c.n", "d.name", "f"]), max_size=3)}),
    st.fixed_dictionaries({"only": st.sets(st.sampled_from(["a", "b", "c", "d", "f"]), min_size=1, max_size=4)}),
    st.fixed_dictionaries({"load_only": st.sets(st.sampled_from(["a", "b", "f"]), max_size=2)}),
    st.just({}),
)


def composite_gateway(declared: dict) -> Gateway:
    """A gateway whose ``composite.dump`` output and ``composite`` topic are ``Composite(**declared)``."""
    schema = Composite(**declared)
    resource = type("CompositeResource", (Resource,), {
        "name": "composite",
        "dump": action(output=schema, name="dump")(lambda self, data: self.gateway.state["object"]),
    })
    return Gateway([resource], [Topic("composite", schema)], title="composite")
