"""Compiled fields: a field's load and dump of a present value, passed through where provably unchanged.

`field_loader` must do what ``field.deserialize`` does and `field_dumper`
what ``field._serialize`` does (through `marshmallow_internals.serializer`):
a value of the exact type passes through (checked by the field's
validators); anything else goes to marshmallow's own method. A compiled
load that raises is not an answer: the caller then lets marshmallow run the
whole schema, so only what it returns must be marshmallow's.
"""

from __future__ import annotations

import math

import pytest
from marshmallow import Schema, ValidationError, fields, pre_load, validate

from drizzle_gateway.schema.compiled import compile_schema
from drizzle_gateway.schema.compiled_fields import INLINED, GiveUp, field_dumper, field_loader
from drizzle_gateway.schema.marshmallow_internals import serializer


class Inner(Schema):
    n = fields.Int(required=True)


class Loud(fields.String):
    """A subclass: it may differ from String, so it is never inlined."""

    def _deserialize(self, value, attr, data, **kwargs):
        return super()._deserialize(value, attr, data, **kwargs).upper()


FIELDS = {
    "str": fields.Str(),
    "int": fields.Int(),
    "float": fields.Float(),
    "float nan": fields.Float(allow_nan=True),
    "bool": fields.Bool(),
    "bool own truths": fields.Bool(truthy={"yes"}, falsy={"no"}),
    "raw": fields.Raw(),
    "int as string": fields.Int(as_string=True),
    "list of int": fields.List(fields.Int()),
    "dict str to int": fields.Dict(keys=fields.Str(), values=fields.Int()),
    "dict": fields.Dict(),
    "nested": fields.Nested(Inner),
    "nested many": fields.Nested(Inner, many=True),
    "length": fields.Str(validate=validate.Length(min=2, max=3)),
    "range": fields.Int(validate=[validate.Range(min=0, max=10), validate.OneOf([1, 2, 11])]),
    "subclass": Loud(),
}
VALUES = ["ab", "abcd", "", 1, 11, -1, True, 1.5, math.nan, None, "1", "yes", [1, "2"], [], {"a": 1},
          {"a": "x"}, {"n": "3"}, [{"n": 1}], {"n": None}, 10**20]


def outcome(call, value):
    """What ``call(value)`` returns, or the type and messages of what it raises."""
    try:
        return "ok", call(value)
    except ValidationError as error:
        return "invalid", error.messages
    except GiveUp:
        return "gave up", None


@pytest.mark.parametrize("name", FIELDS)
def test_a_compiled_load_is_marshmallows_or_gives_up(name):
    field = FIELDS[name]
    Schema.from_dict({"x": field})()  # bound to a schema, as compile_schema finds them
    load = field_loader(field, None)
    for value in VALUES:
        fast, slow = outcome(load, value), outcome(field.deserialize, value)
        if fast[0] != "ok":
            continue  # raised: the caller lets marshmallow run the whole schema
        if isinstance(fast[1], float) and math.isnan(fast[1]):
            assert slow[0] == "ok" and math.isnan(slow[1]), (name, value)
            continue
        assert fast == slow, (name, value)


@pytest.mark.parametrize("name", [name for name in FIELDS if name not in ("nested", "nested many")])
def test_a_compiled_dump_is_marshmallows(name):
    field = FIELDS[name]
    Schema.from_dict({"x": field})()
    dump = field_dumper(field)
    slow = serializer(field)
    for value in (1, 2.5, "s", True, [1, 2], {"a": 1}, None):
        try:
            expected = ("ok", slow(value, None, None))
        except (ValueError, TypeError, AttributeError) as error:
            expected = ("raised", type(error))
        try:
            got = ("ok", dump(value))
        except (ValueError, TypeError, AttributeError) as error:
            got = ("raised", type(error))
        assert got == expected, (name, value)


def test_values_of_the_exact_type_pass_through_unchanged():
    items = [1, 2]
    assert field_loader(fields.List(fields.Int()), None)(items) == items
    payload = {"any": ["thing"]}
    assert field_loader(fields.Raw(), None)(payload) is payload
    assert field_dumper(fields.Str())("s") == "s"
    assert field_dumper(fields.Raw())(payload) is payload


def test_which_classes_are_inlined_and_subclasses_are_not():
    assert set(INLINED) == {fields.String, fields.Integer, fields.Float, fields.Boolean, fields.Raw, fields.Nested,
                            fields.List, fields.Dict}
    assert field_loader(Loud(), None)("shout") == "SHOUT"  # its own _deserialize ran


def test_a_nested_field_loads_through_its_schemas_compiled_loader():
    load = field_loader(fields.Nested(Inner), None)
    assert load({"n": "4"}) == {"n": 4}
    with pytest.raises(ValidationError):
        load({"n": "x"})
    assert field_dumper(fields.Nested(Inner))({"n": 5}) == {"n": 5}
    assert field_dumper(fields.Nested(Inner))(None) is None


@pytest.mark.parametrize("nested", [Inner, lambda: Inner], ids=["class", "lambda"])
def test_a_nested_field_given_many_none_loads_fast_on_every_marshmallow(nested):
    """marshmallow 3 leaves ``many=None`` on the nested schema it builds (4 makes it False): still one object."""
    load = field_loader(fields.Nested(nested, many=None), None)
    assert load({"n": "4"}) == {"n": 4}


class Names(Schema):
    """A pre_load that is not idempotent: it splits the string it expects."""

    names = fields.List(fields.Str())
    seen: list = []  # noqa: RUF012 (every instance counts in it)

    @pre_load
    def split(self, data, **kwargs):
        Names.seen.append(data["names"])
        data["names"] = data["names"].split(",")
        return data


class Group(Schema):
    members = fields.Nested(Names)
    lists = fields.List(fields.Nested(Names))
    id = fields.Int()  # loaded after them: its failure makes the compiled load give up


def test_a_nested_schema_marshmallow_runs_gives_up_before_running_its_hooks():
    """A later field's give-up would run them again: the whole schema goes to marshmallow, which runs them once."""
    with pytest.raises(GiveUp):
        field_loader(fields.Nested(Names), None)({"names": "a,b"})
    with pytest.raises(GiveUp):
        field_loader(fields.List(fields.Nested(Names)), None)([{"names": "a,b"}])
    assert Names.seen == []


@pytest.mark.parametrize("data", [{"id": "x", "members": {"names": "a,b"}}, {"id": "x", "lists": [{"names": "a,b"}]}])
def test_a_nested_hook_runs_as_often_as_in_marshmallow(data):
    def load(schema: Schema) -> tuple[dict, list]:
        Names.seen.clear()
        with pytest.raises(ValidationError) as caught:
            schema.load({key: (dict(value) if isinstance(value, dict) else [dict(v) for v in value])
                         if key != "id" else value for key, value in data.items()})
        return caught.value.messages, list(Names.seen)

    expected = load(Group())
    assert expected == ({"id": ["Not a valid integer."]}, ["a,b"])
    assert load(compile_schema(Group())) == expected  # type: ignore[arg-type]
