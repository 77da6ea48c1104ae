"""Compiled schemas against marshmallow, the oracle: same results, same errors, same messages.

Every differential case (tests/support/differential.py) and hypothesis-built random
schemas are loaded and dumped both ways; a result must be equal (as
``repr``, so ``1``/``1.0``/``True`` and key order differ), an error the same
type with the same ``ValidationError.messages``. The generated code on its
own (``Compiled.loader``/``dumper``) must succeed wherever marshmallow
does, so a regression to "everything goes to marshmallow" fails too.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from marshmallow import EXCLUDE, INCLUDE, RAISE, Schema, ValidationError, fields, validate

from drizzle_gateway.schema.compiled import compile_schema
from drizzle_gateway.wire.dialect import encode
from tests.support.differential import (
    CASES,
    POLICIES,
    Case,
    Composite,
    Hooked,
    Tree,
    case_schema,
    hooked_objects,
    json_scalars,
    json_values,
)

logger = logging.getLogger("tests.compiled")

SETTINGS = settings(max_examples=30, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.filter_too_much])
JUNK = st.none() | st.sampled_from([0, -7, "", "x", 1.5, True, False, [], {}, [1], {"a": 1}])
"""Values of the wrong type for most fields."""
SLOW = {"method", "function"}
"""The cases marshmallow runs itself (Method and Function fields)."""


@pytest.fixture(scope="module")
def tally():
    counts: Counter = Counter()
    yield counts
    logger.info("compiled examples: %d (%s)", sum(counts.values()),
                ", ".join(f"{k}={v}" for k, v in sorted(counts.items())))


def outcome(call: Any, *args: Any) -> tuple[str, Any]:
    """What ``call(*args)`` gives: ("ok", repr of the result) or (exception type, messages or text)."""
    try:
        return "ok", repr(call(*args))
    except ValidationError as exc:
        return "ValidationError", exc.messages
    except Exception as exc:  # noqa: BLE001 (whatever marshmallow raises, the compiled path must too)
        return type(exc).__name__, str(exc)


def check_load(schema: Schema, data: Any, fast: bool = True) -> None:
    compiled = compile_schema(schema)
    expected = outcome(schema.load, data)
    assert outcome(compiled.load, data) == expected, (schema, data)
    assert outcome(compiled.validate, data) == outcome(schema.validate, data), (schema, data)
    generated = compiled.loader(schema.partial, schema.unknown)
    assert (generated is not None) == (fast and compiled.fast), schema
    if generated is not None and expected[0] == "ok":
        assert outcome(generated, data) == expected, ("the generated loader gave up", schema, data)


def check_dump(schema: Schema, obj: Any, fast: bool = True) -> None:
    compiled = compile_schema(schema)
    expected = outcome(schema.dump, obj)
    assert outcome(compiled.dump, obj) == expected, (schema, obj)
    generated = compiled.dumper(schema.many)
    assert (generated is not None) == (fast and compiled.fast), schema
    if generated is not None and expected[0] == "ok":
        assert outcome(generated, obj) == expected, ("the generated dumper gave up", schema, obj)


def as_json(value: Any) -> Any:
    return json.loads(encode(value))


# -- the differential cases --------------------------------------------------------------


def test_which_cases_are_compiled():
    compiled = {case.id for case in CASES if compile_schema(case_schema(case)()).fast}
    assert compiled == {case.id for case in CASES} - SLOW
    assert not compile_schema(Hooked()).fast
    assert compile_schema(Composite()).fast and compile_schema(Tree()).fast


def objects(case: Case) -> st.SearchStrategy:
    return st.fixed_dictionaries({"value": case.values}, optional={"other": st.integers(-2**40, 2**40)})


def inputs(case: Case) -> st.SearchStrategy:
    """Request-like data: dumps of generated objects, junk values, unknown keys, non-objects."""
    schema = case_schema(case)()

    def from_dump(obj: Any) -> Any:
        try:
            return as_json(schema.dump(obj))
        except Exception:  # noqa: BLE001
            return {"value": None}

    wellformed = objects(case).map(from_dump)
    junk = st.fixed_dictionaries({}, optional={"value": json_values, "otherKey": json_values | st.integers()})
    extra = st.dictionaries(st.sampled_from(["extra", "other", "value"]), json_values, max_size=2)
    mapping = st.tuples(wellformed | junk, extra).map(lambda pair: {**pair[1], **pair[0]})
    one_wrong = st.tuples(wellformed, st.sampled_from(["value", "otherKey"]), JUNK | json_scalars).map(
        lambda t: {**t[0], t[1]: t[2]})
    return st.one_of(wellformed, one_wrong, one_wrong, mapping, st.lists(wellformed | one_wrong, max_size=2), JUNK)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_case_loads_and_dumps_equal_marshmallow(tally, case):
    schema_class = case_schema(case)
    fast = case.id not in SLOW

    @SETTINGS
    @given(data=inputs(case), obj=objects(case), policy=st.sampled_from(sorted(POLICIES)),
           partial=st.sampled_from([None, False, True]), many=st.booleans())
    def check(data, obj, policy, partial, many):
        tally["case"] += 1
        check_load(schema_class(), data, fast)
        check_load(schema_class(unknown=POLICIES[policy], partial=partial, many=many), data, fast)
        check_dump(schema_class(), obj, fast)
        check_dump(schema_class(many=True), [obj, SimpleNamespace(**obj)], fast)
        for _, only in case.selections:
            check_dump(schema_class(only=only), obj, fast or "value" not in only)  # without the Method field

    check()


@SETTINGS
@given(obj=hooked_objects, data=st.fixed_dictionaries({}, optional={"name": json_values, "Total": json_values,
                                                                    "tags": json_values, "extra": json_values}))
def test_hooked_schema_is_marshmallow_itself(tally, obj, data):
    tally["hooked"] += 1
    check_load(Hooked(), as_json(data), fast=False)
    check_dump(Hooked(), obj, fast=False)


@settings(SETTINGS, max_examples=60)
@given(declared=st.sampled_from([{}, {"exclude": ("a", "c.n")}, {"only": ("a", "c", "d")}, {"load_only": ("b",)},
                                 {"dump_only": ("a",)}]),
       obj=st.fixed_dictionaries({}, optional={"a": st.text(max_size=3), "b": st.integers(), "e": st.text(),
                                               "c": st.fixed_dictionaries({"name": st.text(max_size=3)},
                                                                          optional={"n": st.integers()}),
                                               "d": st.lists(st.fixed_dictionaries({"name": st.text()}))}))
def test_composite_declarations(tally, declared, obj):
    tally["composite"] += 1
    schema = Composite(**declared)
    check_dump(schema, obj)
    check_load(schema, as_json({**obj, "B": obj.get("b", 0)}))


# -- random schemas ------------------------------------------------------------------------

SCALARS = ("str", "int", "int_strict", "float", "float_nan", "bool", "raw")
scalar_values = {
    "str": st.text(max_size=6), "int": st.integers(-1000, 1000), "int_strict": st.integers(-1000, 1000),
    "float": st.floats(-1e6, 1e6) | st.sampled_from([float("nan"), float("inf")]),
    "float_nan": st.floats(), "bool": st.booleans(), "raw": json_values,
}


@st.composite
def field_specs(draw: Any, depth: int = 0) -> dict:
    """A random field: its kind, options, and what is inside it."""
    kinds = [*SCALARS, "list", "dict", "dict_typed", "nested"] if depth < 2 else list(SCALARS)
    kind = draw(st.sampled_from(kinds))
    spec: dict = {"kind": kind, "opts": {}}
    if kind == "list":
        spec["inner"] = draw(field_specs(depth + 1))
    elif kind == "dict_typed":
        spec["inner"] = draw(field_specs(depth + 1))
    elif kind == "nested":
        spec["schema"] = draw(schema_specs(depth + 1))
        spec["many"] = draw(st.sampled_from([None, False, True]))
        spec["unknown"] = draw(st.sampled_from([None, RAISE, EXCLUDE, INCLUDE]))
        spec["how"] = draw(st.sampled_from(["class", "instance", "lambda"]))
    opts = spec["opts"]
    if draw(st.booleans()):
        opts["required"] = True
    elif draw(st.integers(0, 3)) == 0:
        default = draw(value_for(spec) | st.none())
        opts["load_default"] = (lambda: default) if draw(st.booleans()) else default
    if draw(st.integers(0, 2)) == 0:
        opts["allow_none"] = draw(st.booleans())
    if draw(st.integers(0, 3)) == 0:
        default = draw(value_for(spec) | st.none())
        opts["dump_default"] = (lambda: default) if draw(st.booleans()) else default
    flag = draw(st.sampled_from([None, None, None, "load_only", "dump_only"]))
    if flag:
        opts[flag] = True
    if kind in ("str", "list") and draw(st.booleans()):
        low = draw(st.integers(0, 3))
        opts["validate"] = validate.Length(min=low, max=draw(st.integers(low, 5)) if draw(st.booleans()) else None)
    elif kind.startswith(("int", "float")) and draw(st.booleans()):
        opts["validate"] = [validate.Range(min=-100, max=draw(st.integers(0, 500)),
                                           min_inclusive=draw(st.booleans()))]
    elif kind in ("str", "int") and draw(st.integers(0, 3)) == 0:
        choices = ["a", "b", ""] if kind == "str" else [0, 1, 7]
        opts["validate"] = [validate.OneOf(choices), validate.NoneOf(choices[1:2])]
    return spec


@st.composite
def schema_specs(draw: Any, depth: int = 0) -> dict:
    names = draw(st.lists(st.sampled_from(["a", "b", "c", "d", "e", "items"]), min_size=1, max_size=4, unique=True))
    specs = {name: draw(field_specs(depth)) for name in names}
    for name, spec in specs.items():
        if draw(st.integers(0, 3)) == 0:
            spec["opts"]["data_key"] = name.upper()
        elif draw(st.integers(0, 5)) == 0:
            spec["opts"]["attribute"] = f"attr_{name}"
    return {"fields": specs}


def value_for(spec: dict, mode: str = "near") -> st.SearchStrategy:
    """Values of the field's type (as loaded, or as objects to dump); "near" adds None and junk now and then."""
    kind = spec["kind"]
    if kind in scalar_values:
        typed = scalar_values[kind]
    elif kind == "list":
        typed = st.lists(st.deferred(lambda: value_for(spec["inner"], mode)), max_size=3)
    elif kind == "dict":
        typed = st.dictionaries(st.text(max_size=3), json_values, max_size=3)
    elif kind == "dict_typed":
        typed = st.dictionaries(st.text(max_size=3), st.deferred(lambda: value_for(spec["inner"], mode)),
                                max_size=3)
    else:
        one = st.deferred(lambda: schema_data(spec["schema"], mode=mode))
        typed = st.lists(one, max_size=2) if spec.get("many") else one
    if mode == "near" and kind != "raw":
        return st.integers(0, 3).flatmap(lambda n: JUNK if n == 0 else typed)
    return typed


def schema_data(spec: dict, by: str = "data_key", mode: str = "near") -> st.SearchStrategy:
    """A dict for a schema spec, keyed by data keys (to load) or by attribute (to dump).

    "valid": typed values, every required key, no unknown key; "near": the same with one value
    wrong or one unknown key; "junk": any key may be missing, any value wrong.
    """
    required, optional = {}, {}
    for name, field in spec["fields"].items():
        opts = field["opts"]
        key = opts.get("data_key", name) if by == "data_key" else opts.get("attribute", name)
        if mode == "junk":
            optional[key] = value_for(field, "near") | JUNK
        else:
            (required if opts.get("required") else optional)[key] = value_for(field, "valid")
    known = st.fixed_dictionaries(required, optional=optional)
    if mode == "valid":
        return known
    unknown = st.dictionaries(st.sampled_from(["zz", "a", "B"]), st.integers(), max_size=1)
    if mode == "near":
        keys = sorted({*required, *optional, "zz"})
        return st.tuples(known, st.sampled_from(keys), JUNK | st.integers()).map(lambda t: {**t[0], t[1]: t[2]})
    return st.tuples(unknown, known).map(lambda pair: {**pair[0], **pair[1]})


def build_field(spec: dict) -> fields.Field:
    kind, opts = spec["kind"], dict(spec["opts"])
    if kind == "nested":
        cls = build_schema(spec["schema"])
        nested = {"class": cls, "instance": cls(), "lambda": lambda: cls}[spec["how"]]
        return fields.Nested(nested, many=spec["many"], unknown=spec["unknown"], **opts)
    if kind == "list":
        return fields.List(build_field(spec["inner"]), **opts)
    if kind == "dict":
        return fields.Dict(**opts)
    if kind == "dict_typed":
        return fields.Dict(keys=fields.Str(), values=build_field(spec["inner"]), **opts)
    make = {"str": fields.Str, "int": fields.Int, "int_strict": lambda **o: fields.Int(strict=True, **o),
            "float": fields.Float, "float_nan": lambda **o: fields.Float(allow_nan=True, **o),
            "bool": fields.Bool, "raw": fields.Raw}[kind]
    return make(**opts)


def build_schema(spec: dict) -> type[Schema]:
    return Schema.from_dict({name: build_field(field) for name, field in spec["fields"].items()})


@st.composite
def random_cases(draw: Any) -> tuple[Schema, Any, Any]:
    spec = draw(schema_specs())
    options = {"unknown": draw(st.sampled_from([RAISE, EXCLUDE, INCLUDE])),
               "partial": draw(st.sampled_from([None, False, True])), "many": draw(st.booleans())}
    try:
        schema = build_schema(spec)(**options)
    except ValueError:  # a data_key or attribute collides: marshmallow refuses the schema itself
        schema = build_schema({"fields": {"a": {"kind": "str", "opts": {}}}})(**options)
        spec = {"fields": {"a": {"kind": "str", "opts": {}}}}
    mode = draw(st.sampled_from(["valid", "near", "near", "near", "junk"]))
    one_in, one_out = schema_data(spec, mode=mode), schema_data(spec, by="attribute", mode=mode)
    shaped, misshaped = st.lists(one_in, max_size=2), one_in
    if not options["many"]:
        shaped, misshaped = misshaped, shaped
    data = draw(misshaped if draw(st.integers(0, 4)) == 4 else shaped)
    obj = draw(st.lists(one_out, max_size=2) if options["many"] else one_out)
    if draw(st.booleans()):
        obj = [SimpleNamespace(**o) for o in obj] if isinstance(obj, list) else SimpleNamespace(**obj)
    return schema, data, obj


# 600 examples take about 10 s alone, and several times that beside other busy workers: pytest-timeout's
# 60 s cut the run inside hypothesis once, which then reported FlakyStrategyDefinition instead of a timeout.
@pytest.mark.timeout(300)
@settings(SETTINGS, max_examples=600)
@given(case=random_cases())
def test_random_schemas_load_and_dump_as_marshmallow(tally, case):
    tally["random_schema"] += 1
    schema, data, obj = case
    check_load(schema, data)
    check_dump(schema, obj)
    check_dump(schema, data)


def test_self_referencing_schema_compiles_lazily():
    data = {"label": "a", "child": {"label": "b", "child": {"label": "c"}}, "kids": [{"label": "d", "kids": []}]}
    check_load(Tree(), data)
    check_dump(Tree(), data)
    check_load(Tree(), {"label": "a", "child": {"label": 1}})


def test_overridden_schema_methods_and_custom_fields_are_not_compiled():
    class Upper(fields.Str):
        def _serialize(self, value, attr, obj, **kwargs):
            return str(value).upper()

    class Custom(Schema):
        name = Upper()

    class Accessor(Schema):
        name = fields.Str()

        def get_attribute(self, obj, attr, default):
            return "always"

    for schema in (Custom(), Accessor()):
        assert not compile_schema(schema).fast
        check_dump(schema, {"name": "x"}, fast=False)
        check_load(schema, {"name": "x"}, fast=False)


def test_a_copied_schema_gets_its_own_compiled():
    import copy

    schema = Composite()
    compiled = compile_schema(schema)
    assert compile_schema(schema) is compiled
    narrowed = copy.copy(schema)
    narrowed.dump_fields = {"a": schema.dump_fields["a"]}
    assert compile_schema(narrowed) is not compiled
    assert compile_schema(narrowed).dump({"a": "x", "b": 1}) == {"a": "x"}


BOUNDARIES = [
    (fields.Str, validate.Length(min=2, max=4), ["", "a", "ab", "abcd", "abcde"]),
    (fields.Str, validate.Length(equal=3), ["ab", "abc", "abcd"]),
    (fields.Int, validate.Range(min=1, max=3), [0, 1, 3, 4]),
    (fields.Int, validate.Range(min=1, max=3, min_inclusive=False, max_inclusive=False), [1, 2, 3]),
    (fields.Float, validate.Range(min=-0.5), [-0.6, -0.5, 0.0]),
    (fields.Str, validate.OneOf(["a", "b"]), ["a", "c"]),
    (fields.Str, validate.NoneOf(["x"]), ["x", "y"]),
    (fields.Str, validate.Regexp(r"^\d+$"), ["12", "1a"]),
    (fields.Int, validate.Equal(7), [7, 8]),
    # a plain function returning False: marshmallow 3 refuses the value, marshmallow 4 ignores what it returns
    (fields.Int, lambda value: value > 0, [-1, 0, 1]),
    (fields.Str, [validate.Length(max=3), str.isdigit], ["12", "1a", "1234"]),
]


@pytest.mark.filterwarnings("ignore:Returning `False` from a validator is deprecated")  # marshmallow 3.2x
@pytest.mark.parametrize("make, validator, values", BOUNDARIES,
                         ids=lambda v: type(v).__name__ if isinstance(v, validate.Validator)
                         else "function" if callable(v) and not isinstance(v, type) else None)
def test_validators_at_their_boundaries_top_level_nested_and_in_lists(make, validator, values):
    """Each value on, inside and just outside each bound: the compiled path refuses exactly what marshmallow does."""
    flat = Schema.from_dict({"v": make(required=True, validate=validator)})
    listed = Schema.from_dict({"v": fields.List(make(validate=validator), required=True)})
    nested = Schema.from_dict({"inner": fields.Nested(flat, required=True)})
    assert compile_schema(flat()).fast and compile_schema(listed()).fast and compile_schema(nested()).fast
    for value in values:
        check_load(flat(), {"v": value})
        check_load(listed(), {"v": [values[0], value]})
        check_load(nested(), {"inner": {"v": value}})
        refused = outcome(flat().load, {"v": value})[0] == "ValidationError"
        assert (outcome(compile_schema(flat()).load, {"v": value})[0] == "ValidationError") == refused


BOOLEANS = [True, False, 0, 1, 2, "yes", "n", "", None, [], 1.0]


@pytest.mark.parametrize("field", [fields.Bool(), fields.Bool(truthy={"y"}, falsy={"n"})], ids=["default", "custom"])
def test_a_boolean_dumps_what_the_installed_marshmallow_dumps(field):
    """marshmallow 3 dumps ``0`` as ``False`` (by truthy/falsy), marshmallow 4 as ``0``: the compiled dump follows."""
    schema = Schema.from_dict({"b": field, "bs": fields.List(field), "m": fields.Dict(values=field)})()
    assert compile_schema(schema).fast
    for value in BOOLEANS:
        check_dump(schema, {"b": value, "bs": [value, True], "m": {"k": value}})
