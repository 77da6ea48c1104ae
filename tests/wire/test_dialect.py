"""Frames in and out: the envelope, and bad input answered over a real socket."""

from __future__ import annotations

import pytest

from drizzle_gateway.wire.dialect import Dialect, InvalidFrame
from drizzle_gateway.wire.errors import ActionError

V1 = Dialect()


@pytest.mark.parametrize(
    ("frame", "request_id", "text"),
    [
        ("not json", None, "not valid JSON"),
        ("[1, 2]", None, "JSON object"),
        ('"just a string"', None, "JSON object"),
        ('{"resource": "todos", "action": "list"}', None, "'request_id' is required"),
        ('{"request_id": 1.5, "resource": "todos", "action": "list"}', None, "'request_id' is required"),
        ('{"request_id": true, "resource": "todos", "action": "list"}', None, "'request_id' is required"),
        ('{"request_id": 4, "resource": "todos"}', 4, "'action' is required"),
        ('{"request_id": "r", "resource": 100, "action": "list"}', "r", "'resource' must be a string"),
        ('{"request_id": 4, "action": "list"}', 4, "'resource' is required"),
        ('{"request_id": 4, "resource": "todos", "action": "list", "data": "x"}', 4,
         "'data' must be a JSON object or array"),
        ('{"request_id": 4, "resource": "todos", "action": "list", "data": 1}', 4, "'data' must be"),
        ('{"request_id": 4, "resource": "todos", "action": "list", "fields": "id"}', 4, "'fields' must be"),
        ('{"request_id": 4, "resource": "todos", "action": "list", "fields": [1]}', 4, "'fields' must be"),
        ('{"request_id": 4, "resource": "todos", "action": NaN}', None, "not valid JSON"),
        (b'{"request_id": 4}', None, "binary frames"),
    ],
)
def test_parse_refuses_malformed_frames(frame, request_id, text):
    with pytest.raises(InvalidFrame) as caught:
        V1.parse(frame)
    assert caught.value.code == "VALIDATION_ERROR"
    assert caught.value.request_id == request_id
    assert text in caught.value.message


def test_parse_reads_a_full_request():
    request = V1.parse('{"request_id": 7, "resource": "todos", "action": "create", '
                       '"data": {"title": "é"}, "fields": ["id"]}')
    assert (request.request_id, request.resource, request.action) == (7, "todos", "create")
    assert request.data == {"title": "é"}
    assert request.fields == ("id",)


def test_data_may_be_an_array_for_an_input_declared_many():
    assert V1.parse('{"request_id": 7, "resource": "items", "action": "add", "data": [{"id": 1}]}').data == [
        {"id": 1}]


def test_builtin_actions_need_no_resource():
    assert V1.parse('{"request_id": "p", "action": "__ping__"}').resource is None


def test_frames_out_are_compact_json_and_keep_unicode():
    assert V1.reply(1, {"t": "café ☕"}) == '{"request_id":1,"data":{"t":"café ☕"}}'
    assert V1.event("chat.x", [1]) == '{"topic":"chat.x","data":[1]}'
    assert V1.error(2, ActionError("X", "no")) == '{"request_id":2,"code":"X","error":"no"}'
    assert V1.error(2, ActionError("X", "no", {"a": 1})).endswith(',"details":{"a":1}}')


def test_stream_frames_are_replies_with_more():
    assert V1.item("s", {"n": 1}) == '{"request_id":"s","data":{"n":1},"more":true}'
    assert V1.end("s") == '{"request_id":"s","more":false}'


# -- over the wire: every malformed frame gets an error frame, the socket stays usable --


async def assert_still_serving(sock) -> None:
    assert await sock.ask({"request_id": "alive", "action": "__ping__"}) == {"request_id": "alive", "data": "pong"}


@pytest.mark.gen_test
async def test_non_object_frames_get_validation_errors(raw):
    sock = await raw()
    for frame in ("[]", "42", "null", '"x"', "{", ""):
        reply = await sock.ask(frame)
        assert reply["code"] == "VALIDATION_ERROR", frame
        assert reply["request_id"] is None
        await assert_still_serving(sock)


@pytest.mark.gen_test
async def test_deeply_nested_frame_is_refused_cleanly(raw, server_errors):
    sock = await raw()
    reply = await sock.ask("[" * 10_000 + "]" * 10_000)
    assert reply == {"request_id": None, "code": "VALIDATION_ERROR", "error": "frame is nested deeper than 32 levels"}
    deep_data = '{"request_id": 9, "resource": "todos", "action": "create", "data": {"title": ' + \
        "[" * 10_000 + "]" * 10_000 + "}}"
    reply = await sock.ask(deep_data)
    assert reply == {"request_id": 9, "code": "VALIDATION_ERROR", "error": "frame is nested deeper than 32 levels"}
    await assert_still_serving(sock)
    assert server_errors() == []


@pytest.mark.gen_test
async def test_a_nesting_bomb_gets_the_depth_error_with_its_request_id(raw, server_errors):
    sock = await raw()
    too_deep = {"code": "VALIDATION_ERROR", "error": "frame is nested deeper than 32 levels"}
    bomb = "[" * 100_000
    assert await sock.ask(bomb) == {"request_id": None, **too_deep}
    assert await sock.ask('{"request_id": 7, "action": "__ping__", "data": ' + bomb) == {"request_id": 7, **too_deep}
    assert await sock.ask(' { "request_id" : "b-1", "n": 12345678901234567890123, "data": ' + bomb) == \
        {"request_id": "b-1", **too_deep}  # the exact path for long integers too
    assert await sock.ask('{"action": "__ping__", "request_id": 8, "data": ' + bomb) == {"request_id": None, **too_deep}
    await assert_still_serving(sock)
    assert server_errors() == []


@pytest.mark.gen_test
async def test_a_lone_surrogate_is_refused_with_or_without_a_long_integer(raw):
    sock = await raw()
    not_json = {"request_id": None, "code": "VALIDATION_ERROR", "error": "frame is not valid JSON"}
    short = '{"request_id": 1, "action": "__ping__", "data": {"a": "\\ud800", "n": 1}}'
    long = '{"request_id": 1, "action": "__ping__", "data": {"a": "\\ud800", "n": 1234567890123456789012}}'
    assert await sock.ask(short) == not_json
    assert await sock.ask(long) == not_json
    pair = '{"request_id": 2, "action": "__ping__", "data": {"a": "\\ud83d\\ude00", "n": 1234567890123456789012}}'
    assert await sock.ask(pair) == {"request_id": 2, "data": "pong"}  # a surrogate pair is a valid escape
    await assert_still_serving(sock)


@pytest.mark.gen_test
async def test_binary_frame_is_refused(raw):
    sock = await raw()
    reply = await sock.ask(b'{"request_id": 1, "action": "__ping__"}', binary=True)
    assert reply["code"] == "VALIDATION_ERROR"
    assert "binary" in reply["error"]
    await assert_still_serving(sock)


@pytest.mark.gen_test
async def test_request_id_is_echoed_even_when_the_rest_is_invalid(raw):
    sock = await raw()
    reply = await sock.ask({"request_id": "keep-me", "resource": 100, "action": "list"})
    assert reply == {"request_id": "keep-me", "code": "VALIDATION_ERROR", "error": "'resource' must be a string"}
    reply = await sock.ask({"request_id": 12, "resource": "todos", "action": "create", "data": "x"})
    assert reply["request_id"] == 12 and reply["code"] == "VALIDATION_ERROR"


@pytest.mark.gen_test
async def test_subprotocol_is_negotiated_and_optional(raw):
    with_protocol = await raw()
    assert with_protocol.ws.selected_subprotocol == "drizzle.v1"
    await assert_still_serving(with_protocol)
    without = await raw(subprotocols=())
    assert without.ws.selected_subprotocol is None
    await assert_still_serving(without)
