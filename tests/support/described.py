"""Schemas whose contract is easy to get wrong, served as inputs, outputs and topics.

A marshmallow-oneofschema `OneOfSchema` (alone, nested, in lists, ``many``),
``Decimal`` fields, fields that dump ``null``, load-only required fields,
dates and times, and custom fields that describe themselves. The contract
tests (tests/contract) check that ``__schema__``, AsyncAPI and TypeScript
say what marshmallow really loads and dumps for them.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from jsonschema import Draft202012Validator
from marshmallow import EXCLUDE, Schema, fields
from marshmallow_oneofschema import OneOfSchema

from drizzle_gateway import Gateway, Resource, Topic, action

FORMATS = Draft202012Validator.FORMAT_CHECKER


class Cat(Schema):
    name = fields.String(required=True)
    lives = fields.Integer()


class Dog(Schema):
    class Meta:
        unknown = EXCLUDE  # the OneOfSchema's own unknown (RAISE) is what loading a Dog through Pet uses

    bark = fields.String(required=True)
    weight = fields.Decimal()


class Pet(OneOfSchema):
    """A cat or a dog, told apart by ``kind``."""

    type_field = "kind"
    type_schemas = {"cat": Cat, "dog": Dog}

    def get_obj_type(self, obj: Any) -> str:
        return obj.get("kind") or ("cat" if "name" in obj else "dog")  # loaded data has lost its kind


class Shape(OneOfSchema):
    """The defaults: ``type``, removed before the type schema loads."""

    type_schemas = {"Circle": Cat}

    def get_obj_type(self, obj: Any) -> str:
        return "Circle"


class Owner(Schema):
    name = fields.String(required=True)
    pet = fields.Nested(Pet, required=True)
    pets = fields.List(fields.Nested(Pet))
    more = fields.Nested(Pet, many=True)
    maybe = fields.Nested(Pet, allow_none=True)


TOM = {"kind": "cat", "name": "Tom", "lives": 9}
REX = {"kind": "dog", "bark": "woof", "weight": Decimal("12.50")}
OWNER = {"name": "ada", "pet": TOM, "pets": [TOM, REX], "more": [REX], "maybe": None}


class Priced(Schema):
    price = fields.Decimal(required=True)
    text = fields.Decimal(as_string=True)
    exact = fields.Decimal(places=2, allow_none=True)
    special = fields.Decimal(allow_nan=True)
    ratio = fields.Float(allow_nan=True)
    count = fields.Integer(as_string=True)


class Nullable(Schema):
    id = fields.Integer(required=True)
    note = fields.String(dump_only=True, dump_default=None)
    seen = fields.DateTime(dump_only=True, allow_none=True)
    label = fields.String(dump_default=None)
    parent = fields.Nested(Cat, dump_default=None)
    tags = fields.List(fields.String(), dump_default=None)
    stamp = fields.String(dump_only=True)
    version = fields.Constant(2, dump_only=True)


class Account(Schema):
    name = fields.String(required=True)
    password = fields.String(load_only=True, required=True)
    created = fields.DateTime(dump_only=True, required=True)
    owner = fields.Nested(Owner, dump_only=True)


class Dated(Schema):
    day = fields.Date()
    at = fields.Time()
    stamp = fields.DateTime()
    aware = fields.AwareDateTime()
    naive = fields.NaiveDateTime()


class Money(fields.Field):
    """Cents, sent as a string with two decimals: ``"12.50"``."""

    json_schema = {"type": "string", "pattern": r"^-?\d+\.\d\d$"}

    def _serialize(self, value: Any, attr: Any, obj: Any, **kwargs: Any) -> str | None:
        return None if value is None else f"{Decimal(value) / 100:.2f}"

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> int:
        return int(Decimal(value) * 100)


class Percent(fields.Integer):
    """An integer from 0 to 100, described from the field's own options."""

    def json_schema(self) -> dict:
        return {"minimum": 0, "maximum": self.metadata.get("top", 100)}


class Wallet(Schema):
    balance = Money(required=True)
    spare = Money(allow_none=True)
    share = Percent(metadata={"top": 50})
    code = Money(metadata={"pattern": r"^[0-9]+\.[0-9]{2}$", "description": "non-negative"})
    plain = fields.Raw()


DAY = dt.date(2024, 5, 17)
AT = dt.time(9, 30, 15, 250)


class Described(Resource):
    """Every schema above as an action's input and output."""

    name = "described"

    @action(input=Pet, output=Pet)
    def adopt(self, data: Any) -> Any:
        return data

    @action(input=Owner, output=Owner)
    def owner(self, data: Any) -> Any:
        return data

    @action(output=Pet(many=True))
    def pets(self, data: Any) -> Any:
        return [TOM, REX]

    @action(input=Shape, output=Shape)
    def shape(self, data: Any) -> Any:
        return data

    @action(input=Priced, output=Priced)
    def priced(self, data: Any) -> Any:
        return data

    @action(input=Nullable, output=Nullable)
    def nullable(self, data: Any) -> Any:
        return data

    @action(input=Account, output=Account)
    def account(self, data: Any) -> Any:
        return {**data, "created": dt.datetime(2024, 5, 17, 9, 30, tzinfo=dt.UTC), "owner": OWNER}

    @action(input=Dated, output=Dated)
    def dated(self, data: Any) -> Any:
        return data

    @action(input=Wallet, output=Wallet)
    def wallet(self, data: Any) -> Any:
        return data


def make_gateway() -> Gateway:
    """The gateway of `Described`, with ``Pet`` and ``Owner`` as topics (clients publish pets)."""
    return Gateway([Described], [Topic("pets", Pet, client_publish=True), Topic("owners", Owner),
                                 Topic("accounts", Account, client_publish=True)])


def validator(document: dict, node: dict) -> Draft202012Validator:
    """A 2020-12 validator (formats checked) of ``node``, a schema of ``document`` (a ``__schema__`` reply)."""
    return Draft202012Validator({**node, "components": document["components"]}, format_checker=FORMATS)


def action_of(document: dict, name: str) -> dict:
    """The description of ``described.NAME`` in ``document``."""
    resource = next(r for r in document["resources"] if r["name"] == "described")
    return next(a for a in resource["actions"] if a["name"] == name)


def topic_of(document: dict, name: str) -> dict:
    """The description of topic ``name`` in ``document``."""
    return next(t for t in document["topics"] if t["name"] == name)
