"""JSON on the wire (orjson, with exact stdlib paths): text, numbers and refusals as a client sees them."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drizzle_gateway.schema.publication import Published
from drizzle_gateway.wire.dialect import decode, decode_request, encode

TEXTS = ["ünïcødé", "日本語のテキスト", "emoji 😀🎉", "mixed ascii – dash “quotes”", "\u2028 line separator",
         "tab\t\"q\"\\"]


@pytest.mark.gen_test
async def test_non_ascii_text_round_trips_unescaped(raw):
    ws = await raw()
    for i, text in enumerate(TEXTS):
        await ws.send(json.dumps({"request_id": i, "resource": "lab", "action": "plain", "data": {"t": text}},
                                 ensure_ascii=False))
        frame = await ws.ws.read_message()
        assert json.loads(frame) == {"request_id": i, "data": {"kind": "plain", "data": {"t": text}}}
        if text.isascii() is False and "\u2028" not in text:
            assert text in frame  # sent as UTF-8, not as \\u escapes


@pytest.mark.gen_test
async def test_escaped_input_and_events_are_decoded(raw):
    ws = await raw()
    assert (await ws.ask({"request_id": 1, "action": "__subscribe__", "data": {"topic": "chat.x"}}))["data"]
    await ws.send(json.dumps({"request_id": 2, "resource": "lab", "action": "announce", "data": {
        "room": "x", "message": {"author": {"name": "Zoë"}, "text": "été 😀"}}}, ensure_ascii=True))
    frames = [await ws.ws.read_message() for _ in range(2)]
    event = json.loads(next(f for f in frames if '"topic"' in f))
    assert event["data"]["author"] == {"name": "Zoë"} and event["data"]["text"] == "été 😀"
    assert "été 😀" in next(f for f in frames if '"topic"' in f)


@pytest.mark.gen_test
async def test_big_integers_stay_exact(raw):
    ws = await raw()
    big = 2**70 + 1
    reply = await ws.ask(f'{{"request_id": 1, "resource": "lab", "action": "plain", "data": {{"n": {big}}}}}')
    assert reply["data"]["data"]["n"] == big


@pytest.mark.gen_test
async def test_lone_surrogates_are_refused_or_escaped_never_broken(raw):
    ws = await raw()
    reply = await ws.ask('{"request_id": 1, "resource": "lab", "action": "plain", "data": {"s": "\\ud800"}}')
    assert reply["code"] == "VALIDATION_ERROR"
    # with a long integer in the frame the exact stdlib parser reads it, and refuses it the same
    reply = await ws.ask('{"request_id": 2, "resource": "lab", "action": "plain", '
                         '"data": {"s": "\\ud800", "n": 12345678901234567890123}}')
    assert (reply["code"], reply["error"]) == ("VALIDATION_ERROR", "frame is not valid JSON")
    assert await ws.ask({"request_id": 3, "action": "__ping__"}) == {"request_id": 3, "data": "pong"}


@pytest.mark.gen_test
@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e400"])
async def test_non_finite_numbers_are_refused(raw, literal):
    ws = await raw()
    reply = await ws.ask(f'{{"request_id": 1, "resource": "lab", "action": "plain", "data": {{"x": {literal}}}}}')
    assert reply["code"] == "VALIDATION_ERROR"


# -- the JSON rule (docs/protocol.md, "JSON") -------------------------------------------------

json_leaves = (st.none() | st.booleans() | st.integers() | st.floats() | st.decimals()
               | st.text(st.characters(codec=None)) | st.uuids() | st.datetimes() | st.dates())
json_trees = st.recursive(json_leaves, lambda inner: st.lists(inner, max_size=3) | st.tuples(inner, inner)
                          | st.dictionaries(st.text(max_size=4) | st.integers(), inner, max_size=3), max_leaves=12)


def exact(text: str):
    return json.loads(text, parse_float=Decimal, parse_int=Decimal)


@settings(max_examples=300, deadline=None, database=None)
@given(json_trees)
def test_encode_writes_every_value_as_json_and_decode_reads_back_the_same_text(value):
    text = encode(value)
    exact(text)  # valid JSON
    assert encode(decode(text)) == text


@pytest.mark.parametrize(("value", "text"), [
    (Decimal("1.10"), "1.10"), (Decimal("-0"), "-0"), (Decimal("1E+2"), "1E+2"),
    (Decimal("12345678901234567890.123456789"), "12345678901234567890.123456789"),
    (Decimal("NaN"), "null"), (Decimal("-Infinity"), "null"), (float("nan"), "null"),
    ({1: Decimal("2.50")}, '{"1":2.50}'), ([2**70, "\ud800", Decimal("0.1")], '[1180591620717411303424,"\\ud800",0.1]'),
])
def test_decimals_keep_their_digits(value, text):
    assert encode(value) == text
    assert encode(decode(text)) == text


def test_decode_keeps_floats_floats_and_gives_decimals_only_where_floats_lose_digits():
    assert decode('{"a": 0.1, "b": 1.10, "c": 1e+300, "d": 7}') == {"a": 0.1, "b": Decimal("1.10"), "c": 1e300, "d": 7}
    assert type(decode('[0.1]')[0]) is float and type(decode('[1.10]')[0]) is Decimal


def test_decode_reads_the_lone_surrogate_escapes_encode_writes():
    # the Python client and the Redis broker read what the gateway writes; requests still refuse them
    assert decode(encode({"s": "\ud800"})) == {"s": "\ud800"}
    with pytest.raises(ValueError):
        decode_request('{"s": "\\ud800"}')


def test_a_publication_encodes_as_its_data():
    assert encode({"x": Published({"a": Decimal("1.0")}, object())}) == '{"x":{"a":1.0}}'
    assert encode([Published(2**70, None), "\ud800"]) == '[1180591620717411303424,"\\ud800"]'
