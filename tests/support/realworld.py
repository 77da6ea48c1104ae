"""Schemas the way marshmallow and apispec projects write them, served as a gateway.

Model objects, ``data_key``, ``dump_only``/``load_only``, ``Decimal``,
formatted dates, nested excludes, an envelope made by hooks and a
self-referencing schema: what the toy schemas of tests/support/resources.py lack.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from marshmallow import EXCLUDE, RAISE, Schema, fields, post_dump, pre_load, utils, validate

from drizzle_gateway import Gateway, Resource, Topic, action

CREATED = dt.datetime(2024, 5, 17, 9, 30, tzinfo=dt.UTC)


class User:
    """A model object, as an ORM would hand it over."""

    def __init__(self, name: str, email: str, *, first_name: str = "Ada", age: float = 36.0,
                 balance: Decimal = Decimal("100.10"), id: int = 1, homepage: str = "https://ada.example.com/") -> None:
        self.id = id
        self.name = name
        self.first_name = first_name
        self.email = email
        self.age = age
        self.balance = balance
        self.homepage = homepage
        self.created = CREATED


class UserSchema(Schema):
    id = fields.Int(dump_only=True)
    name = fields.Str(required=True, validate=validate.Length(min=1, max=40))
    first_name = fields.Str(data_key="firstName")
    email = fields.Email(required=True)
    age = fields.Float()
    balance = fields.Decimal()
    balance_text = fields.Decimal(as_string=True, attribute="balance", dump_only=True)
    homepage = fields.Url()
    created = fields.DateTime()
    created_day = fields.DateTime(format="%Y-%m-%d", attribute="created", dump_only=True)
    is_old = fields.Method("get_is_old")
    password = fields.Str(load_only=True, required=True)

    def get_is_old(self, obj: User | dict) -> bool:
        return (utils.get_value(obj, "age") or 0) > 80


class BlogSchema(Schema):
    title = fields.Str()
    user = fields.Nested(UserSchema)
    collaborators = fields.List(fields.Nested(UserSchema))


class TodoSchema(Schema):
    id = fields.Int()
    content = fields.Str()
    user = fields.Nested(UserSchema)


class EnvelopeUser(Schema):
    """Output wrapped in an envelope by a hook, and unwrapped on load, as marshmallow's docs show."""

    name = fields.Str(required=True)
    email = fields.Email()

    @pre_load
    def unwrap(self, data: dict, **kwargs) -> dict:
        return data.get("user", data)

    @post_dump
    def wrap(self, data: dict, **kwargs) -> dict:
        return {"user": data}


class Node(Schema):
    """A self-referencing schema, nested through a lambda returning an instance."""

    id = fields.Int()
    single = fields.Nested(lambda: Node())
    children = fields.List(fields.Nested(lambda: Node()))


class Price(Schema):
    amount = fields.Decimal(required=True)
    label = fields.Decimal(as_string=True)


class Described(Schema):
    """A schema with a Meta description (apispec then forgot additionalProperties)."""

    class Meta:
        description = "strict input"

    name = fields.Str()


class Loose(Schema):
    name = fields.Str()


ADA_WIRE = {"id": 1, "name": "ada", "firstName": "Ada", "email": "ada@example.com", "age": Decimal("36.0"),
            "balance": Decimal("100.10"), "balance_text": "100.10", "homepage": "https://ada.example.com/",
            "created": CREATED.isoformat(), "created_day": "2024-05-17", "is_old": False}
"""What a client reading exact numbers receives for `ada()` through `UserSchema`."""


def ada() -> User:
    return User("ada", "ada@example.com")


def node_tree() -> dict:
    return {"id": 1, "single": {"id": 2, "single": {"id": 3}}, "children": [{"id": 4, "single": {"id": 5}}]}


users = Topic("users", UserSchema)
prices = Topic("prices", Price, client_publish=True)
envelopes = Topic("envelopes", EnvelopeUser)
nodes = Topic("nodes", Node)
blogs = Topic("blogs", BlogSchema(exclude=("user.balance",)))
todo_items = Topic("todo_items", TodoSchema(exclude=("user.email",)))


class Accounts(Resource):
    """Actions returning model objects through real-world schemas."""

    name = "accounts"

    @action(output=UserSchema)
    def user(self, data):
        """A model object with a Decimal balance."""
        return ada()

    @action(output=TodoSchema(many=True, exclude=("user.email",)))
    def todos(self, data):
        """Todos whose users' emails are never sent."""
        return [{"id": 1, "content": "milk", "user": ada()}]

    @action(output=TodoSchema)
    def todo(self, data):
        """The same schema class, without the exclude."""
        return {"id": 1, "content": "milk", "user": ada()}

    @action(output=BlogSchema(exclude=("user.balance",)))
    def blog(self, data):
        """A blog whose author's balance is never sent."""
        return {"title": "notes", "user": ada(), "collaborators": [ada()]}

    @action(output=EnvelopeUser)
    def envelope(self, data):
        """A user wrapped in {"user": ...} by a post_dump hook."""
        return {"name": "ada", "email": "ada@example.com"}

    @action(output=Node)
    def node(self, data):
        """Three levels of a self-referencing schema."""
        return node_tree()

    @action(output=Price)
    def price(self, data):
        """Decimals that floats cannot hold."""
        return {"amount": Decimal("12345678901234567890.123456789"), "label": Decimal("0.10")}

    @action(input=Loose(unknown=EXCLUDE))
    def lenient(self, data):
        """Unknown keys are dropped."""
        return data

    @action(input=Loose(unknown=RAISE))
    def strict(self, data):
        """Unknown keys are refused."""
        return data

    @action(input=Described)
    def described(self, data):
        """Unknown keys are refused here too."""
        return data

    @action()
    async def announce(self, data):
        """Publish a model object server-side, as an action would."""
        await self.publish(users, ada())
        return {"sent": True}


def make_gateway() -> Gateway:
    """A gateway serving `Accounts` and the real-world topics."""
    return Gateway([Accounts], [users, prices, envelopes, nodes, blogs, todo_items], title="real world")
