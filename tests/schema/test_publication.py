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
from marshmallow import Schema, ValidationError, fields, validate

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
