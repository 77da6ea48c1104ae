"""Errors as data: `ActionError`, the stable `ErrorCode`s, and `bounded`, which keeps an error frame small.

`bounded` copies an error's message and details within fixed budgets: the
text to `ERROR_TEXT_CHARS` (then "..."), the details to `DETAIL_ENTRIES`
values, `DETAIL_CHARS` characters of keys and strings, `DETAIL_STRING_CHARS`
per string and `DETAIL_DEPTH` levels, in order, saying whether it cut;
whatever the details hold, the copy is JSON (`json_safe`: marshmallow's
``ValidationError`` objects inside messages are their messages, other values
the JSON rule cannot write are their text).
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from decimal import Decimal

import pytest
from marshmallow import Schema, ValidationError, fields

from drizzle_gateway.wire.codec import encode
from drizzle_gateway.wire.errors import (
    DETAIL_CHARS,
    DETAIL_DEPTH,
    DETAIL_ENTRIES,
    DETAIL_STRING_CHARS,
    ERROR_TEXT_CHARS,
    ActionError,
    ErrorCode,
    bounded,
)

CODES = ["VALIDATION_ERROR", "RESOURCE_NOT_FOUND", "ACTION_NOT_FOUND", "TOPIC_NOT_FOUND", "INVALID_DATA",
         "INVALID_FIELDS", "FORBIDDEN", "UNAUTHENTICATED", "RATE_LIMITED", "LIMIT_EXCEEDED", "TIMEOUT",
         "SHUTTING_DOWN", "UNAVAILABLE", "INTERNAL_ERROR"]


def test_the_error_codes_of_wire_protocol_v1_are_their_own_names():
    declared = {name: value for name, value in vars(ErrorCode).items() if not name.startswith("_")}
    assert declared == {code: code for code in CODES}


def test_an_action_error_carries_its_code_message_and_details():
    error = ActionError("TOKEN_EXPIRED", "token expired", {"at": 1})
    assert (error.code, error.message, error.details, str(error)) == ("TOKEN_EXPIRED", "token expired", {"at": 1},
                                                                      "token expired")
    assert repr(error) == "ActionError('TOKEN_EXPIRED', 'token expired', {'at': 1})"
    assert ActionError(ErrorCode.FORBIDDEN, "no").details is None
    with pytest.raises(ActionError):
        raise error


def test_a_small_error_is_kept_as_it_is():
    details = {"name": ["Missing data for required field."], "tags": [1, 2.5, True, None, {}, []]}
    assert bounded(ActionError("INVALID_DATA", "invalid", details)) == ("invalid", details, False)
    assert bounded(ActionError("INVALID_DATA", "x" * ERROR_TEXT_CHARS)) == ("x" * ERROR_TEXT_CHARS, None, False)


def test_a_long_message_is_cut_at_the_limit_and_marked():
    message, details, cut = bounded(ActionError("INVALID_DATA", "x" * (ERROR_TEXT_CHARS + 1)))
    assert (message, details, cut) == ("x" * ERROR_TEXT_CHARS + "...", None, True)


def test_details_keep_the_first_entries_in_order():
    items = list(range(DETAIL_ENTRIES + 10))
    _, kept, cut = bounded(ActionError("INVALID_DATA", "m", items))
    assert (kept, cut) == (items[:DETAIL_ENTRIES - 1], True)  # the list itself is one entry
    exact = list(range(DETAIL_ENTRIES - 1))
    assert bounded(ActionError("INVALID_DATA", "m", exact)) == ("m", exact, False)


def test_each_string_and_key_is_cut_to_its_own_limit():
    long = "k" * (DETAIL_STRING_CHARS + 5)
    _, kept, cut = bounded(ActionError("INVALID_DATA", "m", {long: long}))
    assert (kept, cut) == ({"k" * DETAIL_STRING_CHARS: "k" * DETAIL_STRING_CHARS}, True)
    fits = "s" * DETAIL_STRING_CHARS
    assert bounded(ActionError("INVALID_DATA", "m", [fits])) == ("m", [fits], False)


def test_details_keep_at_most_their_characters_of_text():
    strings = ["s" * DETAIL_STRING_CHARS] * (DETAIL_CHARS // DETAIL_STRING_CHARS + 3)
    _, kept, cut = bounded(ActionError("INVALID_DATA", "m", strings))
    assert cut and kept == ["s" * DETAIL_STRING_CHARS] * (DETAIL_CHARS // DETAIL_STRING_CHARS)
    assert sum(map(len, kept)) == DETAIL_CHARS


def test_details_nested_deeper_than_the_limit_are_cut():
    def nested(depth: int) -> list:
        value: list = ["leaf"]
        for _ in range(depth - 1):
            value = [value]
        return value

    assert bounded(ActionError("INVALID_DATA", "m", nested(DETAIL_DEPTH))) == ("m", nested(DETAIL_DEPTH), False)
    _, kept, cut = bounded(ActionError("INVALID_DATA", "m", nested(DETAIL_DEPTH + 1)))
    assert cut and kept is None  # the innermost list had no room, and every list around it was left empty


def test_a_container_cut_to_nothing_is_left_out():
    details = {"first": list(range(DETAIL_ENTRIES - 2)), "second": [1, 2]}
    _, kept, cut = bounded(ActionError("INVALID_DATA", "m", details))
    assert cut and kept == {"first": list(range(DETAIL_ENTRIES - 2))}
    room_for_one_more = {"first": list(range(DETAIL_ENTRIES - 3)), "second": {"x": 1}, "third": [[1]]}
    _, kept, cut = bounded(ActionError("INVALID_DATA", "m", room_for_one_more))
    assert cut and kept == {"first": list(range(DETAIL_ENTRIES - 3))}  # "second" had room, its entry none


class Either(fields.Field):
    """A field trying two others, keeping their errors as marshmallow_dataclass's ``Union`` keeps them."""

    def _deserialize(self, value, attr, data, **kwargs):
        errors: list = []
        for candidate in (fields.Int(), fields.Str()):
            try:
                return candidate.deserialize(value)
            except ValidationError as error:
                errors.append(error)
        errors.append(TypeError("neither"))
        raise ValidationError(errors)


class Pair(Schema):
    value = Either()
    items = fields.List(Either())


def test_details_are_made_json_safe_by_one_rule():
    """A ValidationError inside them is its messages; any other value the JSON rule cannot write is its text."""
    with pytest.raises(ValidationError) as caught:
        Pair().load({"value": [1], "items": [1, {}]})
    messages = caught.value.messages  # marshmallow's own: the errors themselves, not their messages
    assert isinstance(messages["value"][0], ValidationError)
    _, details, cut = bounded(ActionError("INVALID_DATA", "m", messages))
    assert details == {"value": [error.messages if isinstance(error, ValidationError) else str(error)
                                 for error in messages["value"]],
                       "items": {1: [["Not a valid integer."], ["Not a valid string."], "neither"]}}
    assert not cut
    assert json.loads(encode(details)) == {"value": [["Not a valid integer."], ["Not a valid string."], "neither"],
                                           "items": {"1": [["Not a valid integer."], ["Not a valid string."],
                                                           "neither"]}}
    kept = {"when": dt.date(2024, 1, 2), "price": Decimal("1.10"), "id": uuid.UUID(int=1), "n": 1, "ok": None}
    assert bounded(ActionError("X", "m", kept)) == ("m", kept, False)  # what the JSON rule writes stays
    odd = {"raw": b"\x00", "set": {3}, (1, 2): "tuple key", "object": Unprintable()}
    assert bounded(ActionError("X", "m", odd)) == ("m", {"raw": "b'\\x00'", "set": "{3}", "(1, 2)": "tuple key",
                                                        "object": "<Unprintable>"}, False)


class Unprintable:
    def __str__(self) -> str:
        raise RuntimeError("no text")


def test_a_message_that_is_not_text_is_its_text():
    assert bounded(ActionError("X", 42)) == ("42", None, False)  # type: ignore[arg-type]
