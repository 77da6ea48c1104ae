"""The two publish rules: a server-side publish is dumped as a reply and read back; a client's is loaded first.

`PublishCheck.publish` dumps what a reply through the schema takes (objects,
attribute names, ``dump_only`` fields) and checks the dump reads back as
input would (ignoring keys the schema does not load); `accept` loads a
client's payload, then dumps what it loaded to. `Published` carries one
publish to every subscriber; `payload_of` gives each selection its event data.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from marshmallow import Schema, ValidationError, fields, post_dump, pre_load, validate
from marshmallow_sqlalchemy import SQLAlchemyAutoSchema
from sqlalchemy import ForeignKey, String, create_engine, event
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship

from drizzle_gateway.schema.publication import PublishCheck, Published, payload_of
from drizzle_gateway.schema.selection import Selector


class Author(Schema):
    name = fields.Str(required=True)


class Note(Schema):
    id = fields.Int(dump_only=True)
    text = fields.Str(required=True, validate=validate.Length(max=5))
    author = fields.Nested(Author, required=True)
    secret = fields.Str(load_only=True, required=True)
    count = fields.Int(data_key="n")


@dataclass
class Person:
    name: str


@dataclass
class NoteObject:
    id: int
    text: str
    author: Person
    count: int = 0


def test_a_server_publish_dumps_an_object_as_a_reply_would():
    published = PublishCheck(Note()).publish(NoteObject(7, "hi", Person("ada"), 2))
    assert published.data == {"id": 7, "text": "hi", "author": {"name": "ada"}, "n": 2}  # secret: load-only
    assert published.source == NoteObject(7, "hi", Person("ada"), 2)
    assert published.__json__() is published.data


def test_a_dump_that_does_not_read_back_is_refused():
    with pytest.raises(ValidationError) as invalid:
        PublishCheck(Note()).publish({"text": "too long", "author": {"name": "ada"}})
    assert invalid.value.messages == {"text": ["Longer than maximum length 5."]}
    with pytest.raises(ValidationError) as missing:
        PublishCheck(Note()).publish({"text": "hi"})
    assert missing.value.messages == {"author": ["Missing data for required field."]}


def test_a_value_that_cannot_be_dumped_names_its_field():
    with pytest.raises(ValidationError) as invalid:
        PublishCheck(Note()).publish({"text": "hi", "author": {"name": "ada"}, "count": "many"})
    assert invalid.value.messages == {"n": ["Not a valid integer."]}


def test_a_many_schemas_dump_errors_are_keyed_by_item():
    with pytest.raises(ValidationError) as invalid:
        PublishCheck(Note(many=True)).publish([{"text": "a", "author": {"name": "x"}},
                                               {"text": "b", "author": {"name": "y"}, "count": "x"}])
    assert invalid.value.messages == {1: {"n": ["Not a valid integer."]}}


def test_a_client_publish_is_loaded_then_dumped():
    check = PublishCheck(Note())
    published = check.accept({"text": "hi", "author": {"name": "ada"}, "secret": "s", "n": "3"})
    assert published.data == {"text": "hi", "author": {"name": "ada"}, "n": 3}
    assert published.source == {"text": "hi", "author": {"name": "ada"}, "secret": "s", "count": 3}
    with pytest.raises(ValidationError) as invalid:
        check.accept({"text": "hi", "author": {"name": "ada"}, "id": 1})  # dump-only: not input
    assert set(invalid.value.messages) == {"id", "secret"}


def test_each_selection_gets_the_reply_of_the_same_object():
    selector = Selector(Note)
    published = PublishCheck(Note()).publish(NoteObject(7, "hi", Person("ada")))
    assert payload_of(published, None) is published.data
    assert payload_of(published, selector.select(["text", "author.name"])) == {"text": "hi", "author": {"name": "ada"}}
    assert payload_of(published.data, selector.select(["id"])) == {"id": 7}  # from another process: plain data
    assert payload_of({"id": 1}, None) == {"id": 1}


def test_published_is_what_brokers_carry():
    published = Published({"a": 1}, object())
    assert published.data == {"a": 1} and published.__json__() == {"a": 1}


# -- hooks and the read-back check -----------------------------------------------------------------


class Slugged(Schema):
    """marshmallow's documented ``slugify_name``: a pre_load that edits its input in place."""

    name = fields.Str()
    slug = fields.Str()
    seen: list = []  # noqa: RUF012 (what the hook was given, every instance)

    @pre_load
    def slugify_name(self, in_data, **kwargs):
        Slugged.seen.append(dict(in_data))
        in_data["slug"] = in_data["slug"].lower().strip().replace(" ", "-")
        return in_data


class Team(Schema):
    lead = fields.Nested(Slugged)
    size = fields.Int()


@pytest.mark.parametrize(("schema", "payload"), [
    (Slugged, {"name": "Steve", "slug": "Steve Loria "}),
    (Team, {"lead": {"name": "Steve", "slug": "Steve Loria "}, "size": 2}),
])
def test_a_hook_that_edits_its_input_in_place_leaves_the_event_as_the_reply(schema, payload):
    """The read-back's hooks see the dump as marshmallow's load of it would; their edits stay in what they load."""
    reply = schema().dump(payload)
    Slugged.seen.clear()
    published = PublishCheck(schema()).publish(payload)
    assert published.data == reply
    assert Slugged.seen == [{"name": "Steve", "slug": "Steve Loria "}]  # as in schema().load(reply)
    assert schema().load(schema().dump(payload)) != reply  # the hook does edit what marshmallow loads


class Base(DeclarativeBase):
    pass


class Writer(Base):
    __tablename__ = "writers"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(50))
    books: Mapped[list[Book]] = relationship(back_populates="writer")


class Book(Base):
    __tablename__ = "books"
    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(50))
    writer_id: Mapped[int | None] = mapped_column(ForeignKey("writers.id"))
    writer: Mapped[Writer | None] = relationship(back_populates="books")


class BookSchema(SQLAlchemyAutoSchema):
    """Loads model instances (``load_instance``), with no session bound."""

    class Meta:
        model = Book
        load_instance = True
        include_relationships = True
        include_fk = True


@pytest.fixture
def db():
    engine = create_engine("sqlite://")
    Base.metadata.create_all(engine)
    with Session(engine) as session:
        session.add(Book(id=1, title="Emma", writer=Writer(id=7, name="Austen")))
        session.commit()
        yield session
    engine.dispose()


def test_a_schema_that_loads_instances_without_a_session_is_published_as_its_reply_is_dumped(db):
    """The read-back check needs no more than a dump: no session, and no query where one is bound."""
    book = db.get(Book, 1)
    reply = BookSchema().dump(book)
    assert reply == {"id": 1, "title": "Emma", "writer_id": 7, "writer": 7}
    with pytest.raises(ValueError, match="requires a session"):
        BookSchema().validate(reply)  # what marshmallow-sqlalchemy asks of a read-back
    schema = BookSchema()
    published = PublishCheck(schema).publish(book)
    assert published.data == reply and not schema.transient
    statements: list[str] = []
    event.listen(db.get_bind(), "before_cursor_execute", lambda *args: statements.append(args[2]))
    with Session(db.get_bind()) as other:  # its identity map is empty: a lookup would query
        assert PublishCheck(BookSchema(session=other)).publish(book).data == reply
    assert statements == []
    with pytest.raises(ValidationError) as invalid:
        PublishCheck(BookSchema()).publish({"id": 2, "title": None, "writer": None})
    assert invalid.value.messages == BookSchema(session=db).validate({"id": 2, "title": None, "writer": None}) == {
        "title": ["Field may not be null."]}


class Counted(Schema):
    """A post_dump that keeps state: every dump it took part in."""

    name = fields.Str()
    tags = fields.List(fields.Str())
    calls: list = []  # noqa: RUF012 (every instance counts in it)

    @post_dump
    def count(self, data, **kwargs):
        Counted.calls.append(dict(data))
        return data


def test_an_events_selection_runs_a_post_dump_hook_once_as_a_reply_does():
    """However many views ask for it (dialects, history reads); the full dump, which is checked, has its own run."""
    obj = {"name": "a", "tags": ["x"]}
    selector = Selector(Counted)
    Counted.calls.clear()
    reply = selector.select(["name"]).dump(obj)
    assert Counted.calls == [{"name": "a"}]
    Counted.calls.clear()
    published = PublishCheck(Counted()).publish(obj)
    assert Counted.calls == [{"name": "a", "tags": ["x"]}]
    assert [payload_of(published, selector.select(["name"])) for _ in range(3)] == [reply] * 3
    assert Counted.calls == [{"name": "a", "tags": ["x"]}, {"name": "a"}]
