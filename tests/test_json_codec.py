"""JSON on the wire (orjson, with exact stdlib paths): text, numbers and refusals as a client sees them."""

from __future__ import annotations

import json

import pytest

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
    # with a long integer in the frame the exact stdlib parser reads it; the reply escapes the surrogate
    reply = await ws.ask('{"request_id": 2, "resource": "lab", "action": "plain", '
                         '"data": {"s": "\\ud800", "n": 12345678901234567890123}}')
    assert reply["data"]["data"] == {"s": "\ud800", "n": 12345678901234567890123}
    assert await ws.ask({"request_id": 3, "action": "__ping__"}) == {"request_id": 3, "data": "pong"}


@pytest.mark.gen_test
@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e400"])
async def test_non_finite_numbers_are_refused(raw, literal):
    ws = await raw()
    reply = await ws.ask(f'{{"request_id": 1, "resource": "lab", "action": "plain", "data": {{"x": {literal}}}}}')
    assert reply["code"] == "VALIDATION_ERROR"
