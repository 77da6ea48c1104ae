"""Schemas the marshmallow ecosystem generates, served as a gateway, for the ecosystem differential suite.

Each `EcoCase` is one schema as a library builds it (marshmallow-sqlalchemy
over SQLAlchemy models on an in-memory SQLite database,
marshmallow_dataclass, marshmallow-oneofschema) or as marshmallow's own
hooks and extension points shape it, with the objects a project hands to
it (ORM rows, dataclass instances, dicts), the request payloads a client
sends it (valid and not), and selections as wire names and as
marshmallow's ``only=`` names. `make_gateway` serves every case as a
resource (``dump`` returns one of its objects, ``roundtrip`` loads a
payload and dumps it back) and as a topic clients may publish on.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
from collections.abc import Callable
from decimal import Decimal
from typing import Annotated, Any, Literal, Optional, Union

import marshmallow_dataclass
from marshmallow import (
    Schema,
    ValidationError,
    fields,
    post_dump,
    post_load,
    pre_dump,
    pre_load,
    validate,
    validates_schema,
)
from marshmallow_oneofschema import OneOfSchema
from marshmallow_sqlalchemy import SQLAlchemyAutoSchema, auto_field
from marshmallow_sqlalchemy.fields import Related, RelatedList
from sqlalchemy import ForeignKey, Numeric, String, create_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship
from sqlalchemy.pool import StaticPool

from drizzle_gateway import Gateway, Resource, Topic, action

Selection = tuple[tuple[str, ...], tuple[str, ...]]
"""A selection as wire ``fields`` and as marshmallow's ``only=`` attribute paths."""


@dataclasses.dataclass
class EcoCase:
    """One generated schema: what it dumps, what clients send it, and how they select from it."""

    id: str
    library: str
    make: Callable[[], Schema]
    """A fresh schema instance: the one the gateway serves, and marshmallow's own (the oracle)."""
    objects: dict[str, Callable[[], Any]]
    """What the application hands to ``dump`` and to ``publish``, by name (built anew for each use)."""
    payloads: dict[str, Any]
    """Request ``data`` a client sends, by name: JSON values."""
    selections: list[Selection] = dataclasses.field(default_factory=list)
    xfail: dict[str, str] = dataclasses.field(default_factory=dict)
    reshaped: tuple[str, ...] = ()
    """Payloads a ``pre_load`` hook reshapes: JSON Schema cannot say what they may be, so no component claims them."""
    """``"<check>:<object or payload name>"`` (or ``"<check>:*"``) -> the known bug that makes it fail."""

    def known_bug(self, check: str, item: str) -> str | None:
        """The known bug a (check, item) pair fails by, if any."""
        return self.xfail.get(f"{check}:{item}") or self.xfail.get(f"{check}:*")


# -- marshmallow-sqlalchemy over SQLAlchemy models on SQLite -----------------------------------


class Base(DeclarativeBase):
    """The declarative base of the library's models."""


class Author(Base):
    """One side of a one-to-many."""

    __tablename__ = "authors"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(40))
    email: Mapped[Optional[str]] = mapped_column(String(80))  # noqa: UP045 (SQLAlchemy reads the annotation)
    books: Mapped[list[Book]] = relationship(back_populates="author", order_by="Book.id")


class Book(Base):
    """Many-to-one to `Author`, one-to-many to `Edition`s (whose key is composite)."""

    __tablename__ = "books"
    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(60))
    price: Mapped[Optional[Decimal]] = mapped_column(Numeric(10, 2))  # noqa: UP045
    published: Mapped[Optional[dt.date]]  # noqa: UP045
    author_id: Mapped[Optional[int]] = mapped_column(ForeignKey("authors.id"))  # noqa: UP045
    author: Mapped[Optional[Author]] = relationship(back_populates="books")  # noqa: UP045
    editions: Mapped[list[Edition]] = relationship(back_populates="book", order_by="Edition.number")


class Edition(Base):
    """A row whose primary key is two columns."""

    __tablename__ = "editions"
    book_id: Mapped[int] = mapped_column(ForeignKey("books.id"), primary_key=True)
    number: Mapped[int] = mapped_column(primary_key=True)
    isbn: Mapped[str] = mapped_column(String(20))
    book: Mapped[Book] = relationship(back_populates="editions")


ENGINE = create_engine("sqlite://", connect_args={"check_same_thread": False}, poolclass=StaticPool)
SESSION = Session(ENGINE, autoflush=False, expire_on_commit=False)
"""The session the ``load_instance`` schemas with a session bind (rows are read with it, never written)."""


def seed() -> None:
    """Create the tables and the rows the cases dump: two authors, three books, three editions."""
    Base.metadata.create_all(ENGINE)
    ada, bob = Author(id=1, name="Ada", email="ada@example.com"), Author(id=2, name="Bob", email=None)
    books = [Book(id=1, title="Notes", price=Decimal("12.50"), published=dt.date(1843, 9, 1), author=ada),
             Book(id=2, title="Engines", price=None, published=None, author=ada),
             Book(id=3, title="Orphan", price=Decimal("0.10"), published=dt.date(2024, 2, 29), author=None)]
    editions = [Edition(book=books[0], number=1, isbn="111"), Edition(book=books[0], number=2, isbn="112"),
                Edition(book=books[1], number=1, isbn="211")]
    SESSION.add_all([ada, bob, *books, *editions])
    SESSION.commit()


seed()


def row(model: type[Base], *key: Any) -> Any:
    """The persistent row of ``model`` with primary key ``key``, as the session holds it."""
    return SESSION.get(model, key if len(key) > 1 else key[0])


def reset_rows() -> None:
    """Forget whatever loads did to the session's rows (``load_instance`` sets attributes on them)."""
    SESSION.rollback()


class AuthorSchema(SQLAlchemyAutoSchema):
    """Author with its books as a `RelatedList` of their keys, loading instances through the session."""

    class Meta:
        model = Author
        include_relationships = True
        load_instance = True
        sqla_session = SESSION
        register = False


class BookSchema(SQLAlchemyAutoSchema):
    """Book with its author as `Related`, its foreign key and its editions (composite keys), with a session."""

    class Meta:
        model = Book
        include_relationships = True
        include_fk = True
        load_instance = True
        sqla_session = SESSION
        register = False


class BookNoSessionSchema(SQLAlchemyAutoSchema):
    """Book loading instances but bound to no session (as when the session is passed to ``load`` only)."""

    class Meta:
        model = Book
        load_instance = True
        register = False


class EditionSchema(SQLAlchemyAutoSchema):
    """A composite primary key, loaded as a dict (no ``load_instance``)."""

    class Meta:
        model = Edition
        include_fk = True
        sqla_session = SESSION
        register = False


class BookRow(SQLAlchemyAutoSchema):
    """Book columns only: what `AuthorWithBooks` nests."""

    class Meta:
        model = Book
        register = False


class AuthorWithBooks(SQLAlchemyAutoSchema):
    """Books nested whole, with a renamed column and explicit `Related`/`RelatedList` fields beside them."""

    class Meta:
        model = Author
        sqla_session = SESSION
        register = False

    name = auto_field(data_key="fullName")
    books = fields.Nested(BookRow, many=True)
    book_ids = RelatedList(Related(columns=["id"], attribute="books"), attribute="books", dump_only=True)


SQLA_SELECTIONS: list[Selection] = [(("title",), ("title",)), (("author", "editions"), ("author", "editions"))]


def _sqlalchemy_cases() -> list[EcoCase]:
    book_payloads = {
        "existing": {"id": 1, "title": "Notes", "price": 12.5, "published": "1843-09-01", "author": 1,
                     "author_id": 1, "editions": [{"book_id": 1, "number": 1}]},
        "new": {"id": 90, "title": "Fresh", "author": 2},
        "price_as_string": {"id": 91, "title": "Priced", "price": "9.99"},
        "unknown_author": {"id": 92, "title": "Lost", "author": 99},
        "bad_types": {"id": "x", "title": 5, "published": "yesterday", "editions": [7]},
        "too_long": {"id": 93, "title": "x" * 61},
    }
    return [
        EcoCase("sqla_author", "marshmallow-sqlalchemy", AuthorSchema,
                {"ada": lambda: row(Author, 1), "bob": lambda: row(Author, 2)},
                {"existing": {"id": 1, "name": "Ada", "email": "ada@example.com", "books": [1, 2]},
                 "new": {"id": 70, "name": "Cy", "books": [3]},
                 "missing_name": {"id": 71},
                 "unknown_book": {"id": 72, "name": "Di", "books": [1, 404]},
                 "bad_email_type": {"id": 73, "name": "Ed", "email": ["x"]}},
                [(("name",), ("name",)), (("books",), ("books",))]),
        EcoCase("sqla_book", "marshmallow-sqlalchemy", BookSchema,
                {"notes": lambda: row(Book, 1), "engines": lambda: row(Book, 2), "orphan": lambda: row(Book, 3)},
                book_payloads, SQLA_SELECTIONS),
        EcoCase("sqla_book_no_session", "marshmallow-sqlalchemy", BookNoSessionSchema,
                {"notes": lambda: row(Book, 1), "orphan": lambda: row(Book, 3)},
                {"new": {"id": 94, "title": "Fresh"}, "bad_types": {"id": "x", "title": 5}},
                [(("title", "price"), ("title", "price"))]),
        EcoCase("sqla_edition", "marshmallow-sqlalchemy", EditionSchema,
                {"first": lambda: row(Edition, 1, 1), "as_dict": lambda: {"book_id": 2, "number": 1, "isbn": "211"}},
                {"valid": {"book_id": 1, "number": 3, "isbn": "113"},
                 "missing_key": {"isbn": "114"},
                 "bad_key": {"book_id": "one", "number": 1.5, "isbn": None}},
                [(("number", "isbn"), ("number", "isbn"))]),
        EcoCase("sqla_author_nested", "marshmallow-sqlalchemy", AuthorWithBooks,
                {"ada": lambda: row(Author, 1), "bob": lambda: row(Author, 2)},
                {"valid": {"id": 80, "fullName": "Flo", "books": [{"id": 81, "title": "Pages", "price": 3}]},
                 "attribute_name": {"id": 82, "name": "Gus"},
                 "bad_nested": {"id": 83, "fullName": "Hal", "books": [{"id": "x", "title": None}, 5]}},
                [(("fullName", "books.title"), ("name", "books.title")), (("books.id", "book_ids"),
                                                                           ("books.id", "book_ids"))]),
    ]


# -- marshmallow_dataclass ----------------------------------------------------------------------


class Shape(enum.Enum):
    """An Enum field (dumped by name)."""

    ROUND = "round"
    SQUARE = "square"


Positive = marshmallow_dataclass.NewType("Positive", int, validate=validate.Range(min=1))
Label = Annotated[str, fields.String(validate=validate.Length(min=1, max=8))]


@dataclasses.dataclass
class Address:
    """A nested dataclass."""

    street_name: str
    zip_code: Optional[str] = None  # noqa: UP045 (as users of the library write it)


@dataclasses.dataclass
class Order:
    """NewType and Annotated with validators, Literal, Enum, Optional nested, a list of nested."""

    order_id: Positive
    label: Label
    kind: Literal["a", "b"]
    shape: Shape
    address: Optional[Address] = None  # noqa: UP045
    lines: list[Address] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class Stop:
    """A nested dataclass of its own for `Parcel` (marshmallow_dataclass caches nested schemas per class)."""

    street_name: str
    zip_code: Optional[str] = None  # noqa: UP045


@dataclasses.dataclass
class Parcel:
    """What `CamelBase` renames, nested ones included."""

    parcel_id: Positive
    shape: Shape
    address: Optional[Stop] = None  # noqa: UP045
    stops: list[Stop] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class Ref:
    """A Union field."""

    ref: Union[int, str]  # noqa: UP007
    note: Optional[str] = None  # noqa: UP045


def camel(name: str) -> str:
    """``street_name`` -> ``streetName``."""
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


class CamelBase(Schema):
    """A base schema that renames every wire key to camelCase, as marshmallow's docs show."""

    def on_bind_field(self, field_name: str, field_obj: fields.Field) -> None:
        field_obj.data_key = camel(field_obj.data_key or field_name)


OrderSchema = marshmallow_dataclass.class_schema(Order)
CamelParcelSchema = marshmallow_dataclass.class_schema(Parcel, base_schema=CamelBase)
RefSchema = marshmallow_dataclass.class_schema(Ref)


def _order() -> Order:
    return Order(3, "box", "a", Shape.ROUND, Address("Main St", "12345"), [Address("Side", None), Address("Back")])


def _dataclass_cases() -> list[EcoCase]:
    order_invalid = {"order_id": 0, "label": "", "kind": "c", "shape": "round", "address": {"zip_code": 5},
                     "lines": [{"street_name": None}]}
    return [
        EcoCase("dc_order", "marshmallow_dataclass", OrderSchema,
                {"full": _order, "bare": lambda: Order(1, "x", "b", Shape.SQUARE)},
                {"valid": {"order_id": 7, "label": "crate", "kind": "b", "shape": "SQUARE",
                           "address": {"street_name": "Elm"}, "lines": []},
                 "nulls": {"order_id": 8, "label": "c", "kind": "a", "shape": "ROUND", "address": None},
                 "invalid": order_invalid,
                 "missing": {"label": "only"}},
                [(("label", "address.zip_code"), ("label", "address.zip_code")),
                 (("lines.street_name", "shape"), ("lines.street_name", "shape"))]),
        EcoCase("dc_camel", "marshmallow_dataclass", CamelParcelSchema,
                {"full": lambda: Parcel(3, Shape.ROUND, Stop("Main St", "12345"), [Stop("Side"), Stop("Back", "9")]),
                 "bare": lambda: Parcel(4, Shape.SQUARE)},
                {"valid": {"parcelId": 7, "shape": "SQUARE", "address": {"streetName": "Elm", "zipCode": "9"},
                           "stops": [{"streetName": "Oak"}]},
                 "attribute_names": {"parcel_id": 7, "shape": "SQUARE"},
                 "invalid": {"parcelId": -1, "shape": "round", "stops": [{"zipCode": 1}]}},
                [(("parcelId", "address.zipCode"), ("parcel_id", "address.zip_code")),
                 (("stops.streetName",), ("stops.street_name",))]),
        EcoCase("dc_union", "marshmallow_dataclass", RefSchema,
                {"int": lambda: Ref(5), "str": lambda: Ref("five", "n")},
                {"int": {"ref": 5}, "str": {"ref": "five", "note": None}, "invalid": {"ref": [1]},
                 "missing": {"note": "x"}},
                [(("ref",), ("ref",))]),
    ]


# -- marshmallow-oneofschema ----------------------------------------------------------------


@dataclasses.dataclass
class Circle:
    """One alternative."""

    radius: float


@dataclasses.dataclass
class Square:
    """The other."""

    side: int


class CircleSchema(Schema):
    """Builds a `Circle`."""

    radius = fields.Float(required=True)

    @post_load
    def make(self, data: dict, **kwargs: Any) -> Circle:
        return Circle(**data)


class SquareSchema(Schema):
    """Builds a `Square`."""

    side = fields.Int(required=True, validate=validate.Range(min=0))

    @post_load
    def make(self, data: dict, **kwargs: Any) -> Square:
        return Square(**data)


class ShapeSchema(OneOfSchema):
    """A circle or a square, told apart by ``type``."""

    type_schemas = {"circle": CircleSchema, "square": SquareSchema}

    def get_obj_type(self, obj: Any) -> str:
        return {Circle: "circle", Square: "square"}[type(obj)]


class Drawing(Schema):
    """A `ShapeSchema` nested once and many times."""

    title = fields.Str(required=True)
    main = fields.Nested(ShapeSchema)
    shapes = fields.Nested(ShapeSchema, many=True)


def _drawing() -> dict:
    return {"title": "d", "main": Circle(1.5), "shapes": [Square(2), Circle(0.25)]}


def _oneof_cases() -> list[EcoCase]:
    shape_payloads = {"circle": {"type": "circle", "radius": 2.5}, "square": {"type": "square", "side": 3},
                      "no_type": {"radius": 1}, "unknown_type": {"type": "hexagon"},
                      "invalid": {"type": "square", "side": -1}}
    return [
        EcoCase("oneof", "marshmallow-oneofschema", ShapeSchema,
                {"circle": lambda: Circle(1.0), "square": lambda: Square(4)}, shape_payloads),
        EcoCase("oneof_nested", "marshmallow-oneofschema", Drawing,
                {"drawing": _drawing, "bare": lambda: {"title": "b"}},
                {"valid": {"title": "t", "main": {"type": "square", "side": 1},
                           "shapes": [{"type": "circle", "radius": 1}]},
                 "invalid": {"title": "t", "main": {"type": "oval"}, "shapes": [{"type": "circle"}, 3]}},
                [(("title",), ("title",)), (("main",), ("main",))]),
        EcoCase("oneof_many", "marshmallow-oneofschema", lambda: ShapeSchema(many=True),
                {"shapes": lambda: [Circle(1.0), Square(2)], "none": list},
                {"valid": [{"type": "circle", "radius": 1}], "invalid": [{"type": "square"}, {"type": "x"}]}),
    ]


# -- marshmallow's hooks that mutate, and its extension points -------------------------------------


class Slugged(Schema):
    """marshmallow's documented ``slugify_name``: a pre_load that edits its input in place."""

    name = fields.Str()
    slug = fields.Str()

    @pre_load
    def slugify_name(self, in_data: dict, **kwargs: Any) -> dict:
        in_data["slug"] = in_data["slug"].lower().strip().replace(" ", "-")
        return in_data


class Names(Schema):
    """A pre_load that is not idempotent: it splits a string it expects to be a string."""

    names = fields.List(fields.Str())

    @pre_load
    def split(self, data: dict, **kwargs: Any) -> dict:
        data["names"] = data["names"].split(",")
        return data


class Group(Schema):
    """`Names` nested."""

    members = fields.Nested(Names)  # first: the fast path has run its hook when it meets a bad ``id``
    id = fields.Int()


@dataclasses.dataclass
class Person:
    """What `PersonSchema`'s post_load builds."""

    name: str
    born: dt.date | None = None


class PersonSchema(Schema):
    """post_load building objects, pre_dump and post_dump reshaping, validates_schema across fields."""

    name = fields.Str(required=True)
    born = fields.Date(allow_none=True)
    stamp = fields.Str(dump_only=True)

    @pre_dump
    def trim(self, obj: Any, **kwargs: Any) -> Any:
        return dataclasses.replace(obj, name=obj.name.strip()) if isinstance(obj, Person) else obj

    @post_dump
    def initials(self, data: dict, **kwargs: Any) -> dict:
        if "name" in data:
            data["name"] = data["name"].title()
        return data

    @validates_schema
    def not_before_epoch(self, data: dict, **kwargs: Any) -> None:
        if data.get("born") and data["born"] < dt.date(1900, 1, 1) and not data.get("name", "").startswith("Ada"):
            raise ValidationError("Only Ada was born before 1900.", "born")

    @post_load
    def make(self, data: dict, **kwargs: Any) -> Person:
        return Person(**data)


class Upper(fields.Field):
    """A custom field: sends text upper-cased, loads only strings."""

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> Any:
        return None if value is None else str(value).upper()

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if not isinstance(value, str):
            raise ValidationError("Not text.")
        return value.lower()


class Child(Schema):
    """What `Extended` plucks."""

    pk = fields.Int()
    name = fields.Str()


class Extended(Schema):
    """A custom field, Method and Function fields that load, and Pluck with ``many``."""

    code = Upper(required=True)
    size = fields.Method("get_size", deserialize="load_size")
    double = fields.Function(lambda obj: obj["n"] * 2, deserialize=lambda value: int(value) // 2, attribute="n",
                             data_key="double")
    children = fields.Pluck(Child, "pk", many=True)

    def get_size(self, obj: Any) -> int:
        return len(obj["code"])

    def load_size(self, value: Any) -> int:
        if not isinstance(value, int):
            raise ValidationError("Not a size.")
        return value


class Signup(Schema):
    """A load-only required field: inputs need it, outputs never carry it."""

    email = fields.Email(required=True)
    password = fields.Str(required=True, load_only=True)


class Counted(Schema):
    """A post_dump that keeps state: the number of dumps it took part in."""

    name = fields.Str()
    tags = fields.List(fields.Str())

    calls: list[dict] = []  # noqa: RUF012 (shared on purpose: every instance counts in it)

    @post_dump
    def count(self, data: dict, **kwargs: Any) -> dict:
        Counted.calls.append(data)
        return data


def _hook_cases() -> list[EcoCase]:
    return [
        EcoCase("hook_slug", "marshmallow hooks", Slugged,
                {"steve": lambda: {"name": "Steve", "slug": "Steve Loria "}, "plain": lambda: {"name": "x",
                                                                                            "slug": "x"}},
                {"valid": {"name": "Steve", "slug": "Steve Loria "}, "no_slug": {"name": "x"},
                 "bad_slug": {"slug": 5}},
                [(("slug",), ("slug",))]),
        EcoCase("hook_nested_pre_load", "marshmallow hooks", Group,
                {"group": lambda: {"id": 1, "members": {"names": ["a", "b"]}}},
                {"valid": {"id": 1, "members": {"names": "a,b"}}, "invalid": {"id": "x", "members": {"names": "a,b"}}},
                [(("members.names",), ("members.names",))], reshaped=("valid", "invalid")),
        EcoCase("hook_person", "marshmallow hooks", PersonSchema,
                {"ada": lambda: Person(" ada lovelace ", dt.date(1815, 12, 10)), "nobody": lambda: Person("x"),
                 "stamped": lambda: {"name": "ann", "born": None, "stamp": None}},
                {"valid": {"name": "Ada", "born": "1815-12-10"}, "too_early": {"name": "Bob", "born": "1815-12-10"},
                 "missing": {"born": None}, "bad_date": {"name": "Cy", "born": "soon"}},
                [(("name",), ("name",)), (("born", "stamp"), ("born", "stamp"))]),
        EcoCase("ext_fields", "marshmallow extension points", Extended,
                {"one": lambda: {"code": "ab", "n": 4, "children": [{"pk": 1, "name": "c"}, {"pk": 2}]}},
                {"valid": {"code": "AB", "size": 2, "double": 8, "children": [1, 2]},
                 "invalid": {"code": 3, "size": "big", "double": 1, "children": ["x"]}},
                [(("code", "size"), ("code", "size")), (("double", "children"), ("double", "children")),
                 (("children.pk",), ("children.pk",))]),
        EcoCase("ext_load_only", "marshmallow extension points", Signup,
                {"ann": lambda: {"email": "ann@example.com", "password": "never sent"}},
                {"valid": {"email": "ann@example.com", "password": "pw"}, "missing": {"email": "ann@example.com"}},
                [(("email",), ("email",))]),
    ]


CASES: tuple[EcoCase, ...] = (*_sqlalchemy_cases(), *_dataclass_cases(), *_oneof_cases(), *_hook_cases())


def _resource(case: EcoCase) -> type[Resource]:
    name = case.id

    def dump(self: Resource, data: Any) -> Any:
        return self.gateway.state["objects"][name]

    def roundtrip(self: Resource, data: Any) -> Any:
        return data

    return type(f"{name}_resource", (Resource,), {
        "name": name,
        "dump": action(output=case.make(), name="dump")(dump),
        "roundtrip": action(input=case.make(), output=case.make(), name="roundtrip")(roundtrip),
    })


def make_gateway() -> Gateway:
    """One gateway serving every case: resource ``<id>`` (``dump``, ``roundtrip``) and topic ``<id>``."""
    gateway = Gateway(title="ecosystem")
    gateway.state["objects"] = {}
    for case in CASES:
        gateway.add_resource(_resource(case))
        gateway.add_topic(Topic(case.id, case.make(), client_publish=True))
    return gateway
