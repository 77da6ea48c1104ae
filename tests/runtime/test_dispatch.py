"""The request path (`runtime.dispatch`), in process: every refusal a request can meet, as a client reads it.

Frames are sent whole through `TestClient.exchange`, so each test sees the
reply or error frame a socket would carry (request id, code, message, details).
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass

import marshmallow_dataclass
import pytest
from marshmallow import Schema, ValidationError, fields

from drizzle_gateway import ActionError, Resource, action
from drizzle_gateway.client import RemoteError
from drizzle_gateway.runtime.limits import Limits
from drizzle_gateway.testing import TestClient
from drizzle_gateway.wire.codec import PARSER_DEPTH
from drizzle_gateway.wire.errors import DETAIL_ENTRIES, DETAIL_STRING_CHARS, ERROR_TEXT_CHARS, json_safe
from tests.support.inprocess import exchange
from tests.support.polling import wait_until
from tests.support.request_frames import call, nested
from tests.support.resources import Napper
from tests.support.serve_app import make_gateway as make_test_gateway
from tornado_drizzle import DrizzleHandler
from tornado_drizzle.protocol import LegacyProtocol

# -- what the request names and carries -------------------------------------------------------


@pytest.mark.gen_test
async def test_invalid_data_details_are_marshmallow_messages(test_client):
    client = await test_client()
    reply = await exchange(client, {"request_id": 1, "resource": "todos", "action": "create", "data": {}})
    assert reply == {"request_id": 1, "code": "INVALID_DATA",
                     "error": "data does not match the action's input schema",
                     "details": {"title": ["Missing data for required field."]}}
    reply = await exchange(client, {"request_id": 2, "resource": "todos", "action": "create",
                                    "data": {"title": "", "colour": "red"}})
    assert reply["details"] == {"title": ["Length must be between 1 and 200."], "colour": ["Unknown field."]}


@pytest.mark.gen_test
async def test_unknown_resource_and_action(test_client):
    client = await test_client()
    reply = await exchange(client, {"request_id": 1, "resource": "nope", "action": "list"})
    assert reply == {"request_id": 1, "code": "RESOURCE_NOT_FOUND", "error": "resource 'nope' not found"}
    reply = await exchange(client, {"request_id": 2, "resource": "todos", "action": "destroy"})
    assert reply == {"request_id": 2, "code": "ACTION_NOT_FOUND",
                     "error": "action 'destroy' not found in resource 'todos'"}
    reply = await exchange(client, {"request_id": 3, "action": "__nope__"})
    assert reply["code"] == "ACTION_NOT_FOUND"


@pytest.mark.gen_test
async def test_nesting_deeper_than_the_limit_is_a_validation_error(test_client):
    client = await test_client()
    fits = await exchange(client, call(1, data=nested(Limits().max_depth - 1)))
    assert "data" in fits
    too_deep = await exchange(client, call(2, data=nested(Limits().max_depth)))
    assert too_deep["code"] == "VALIDATION_ERROR" and too_deep["request_id"] == 2
    assert "deeper" in too_deep["error"]
    hostile = await exchange(client, '{"request_id": 3, "data": ' + "[" * 100_000 + "]" * 100_000 + "}")
    assert hostile["code"] == "VALIDATION_ERROR"
    assert await exchange(client, call(4, None, "__ping__")) == {"request_id": 4, "data": "pong"}


@pytest.mark.gen_test
@pytest.mark.gateway_options(limits=Limits(max_keys=50))
async def test_too_many_keys_is_a_validation_error(test_client):
    client = await test_client()
    fits = await exchange(client, call(1, data={f"k{i}": i for i in range(40)}))
    assert len(fits["data"]["data"]) == 40
    spread = {"a": {f"k{i}": i for i in range(30)}, "b": [{f"k{i}": i for i in range(30)}]}
    refused = await exchange(client, call(2, data=spread))
    assert refused["code"] == "VALIDATION_ERROR" and "keys" in refused["error"]


@pytest.mark.gen_test
@pytest.mark.gateway_options(limits=Limits(max_keys=None))
async def test_error_frames_are_cut_to_their_bounds_and_say_so(test_client):
    client = await test_client()
    unknown = await exchange(client, call(1, "todos", "create", {"title": "t", **{f"k{i}": 1 for i in range(5000)}}))
    assert (unknown["code"], unknown["truncated"]) == ("INVALID_DATA", True)
    assert len(unknown["details"]) == (DETAIL_ENTRIES - 1) // 2  # the details, then a list and its message per key
    assert all(unknown["details"][key] == ["Unknown field."] for key in unknown["details"])
    long_name = "r" * 100_000
    missing = await exchange(client, call(2, long_name, "list"))
    assert missing == {"request_id": 2, "code": "RESOURCE_NOT_FOUND", "truncated": True,
                       "error": f"resource '{long_name}"[:ERROR_TEXT_CHARS] + "..."}
    long_key = "k" * 10_000
    cut = await exchange(client, call(3, "todos", "create", {"title": "t", long_key: 1}))
    assert cut == {"request_id": 3, "code": "INVALID_DATA", "error": "data does not match the action's input schema",
                   "details": {long_key[:DETAIL_STRING_CHARS]: ["Unknown field."]}, "truncated": True}
    small = await exchange(client, call(4, "todos", "create", {"title": "t", "colour": 1}))
    assert "truncated" not in small and small["details"] == {"colour": ["Unknown field."]}


@pytest.mark.gen_test
@pytest.mark.gateway_options(limits=Limits(rate=5, burst=5))
async def test_rate_limit_answers_rate_limited_with_a_retry_hint(test_client):
    other = await test_client()
    client = await test_client()
    for _ in range(2):  # invalid frames count too
        assert (await exchange(client, "not json"))["code"] == "VALIDATION_ERROR"
    replies = [await exchange(client, call(request_id, None, "__ping__")) for request_id in range(6)]
    assert [r.get("data") for r in replies[:3]] == ["pong"] * 3
    limited = replies[3:]
    assert {r["code"] for r in limited} == {"RATE_LIMITED"}
    assert all(0 < r["details"]["retry_after"] <= 1 for r in limited)
    assert await other.ping() == "pong"  # the limit is per connection
    await asyncio.sleep(limited[0]["details"]["retry_after"])
    assert (await exchange(client, call(9, None, "__ping__")))["data"] == "pong"


# -- what the action does -------------------------------------------------------------------


@pytest.mark.gen_test
async def test_action_error_passes_through(test_client):
    client = await test_client()
    reply = await exchange(client, {"request_id": "q", "resource": "lab", "action": "refuse"})
    assert reply == {"request_id": "q", "code": "QUOTA_EXCEEDED", "error": "too many todos", "details": {"limit": 3}}


@pytest.mark.gen_test
@pytest.mark.parametrize("action", ["fail", "unserializable", "bad_output"])
async def test_unexpected_failures_are_internal_errors_without_details(test_client, server_errors, action):
    client = await test_client()
    reply = await exchange(client, {"request_id": 5, "resource": "lab", "action": action})
    assert reply == {"request_id": 5, "code": "INTERNAL_ERROR",
                     "error": "internal error; the server log has the details"}
    assert "Traceback" not in str(reply) and "secret" not in str(reply)
    assert len(server_errors()) == 1 and server_errors()[0].exc_info is not None
    assert await exchange(client, {"request_id": 6, "action": "__ping__"}) == {"request_id": 6, "data": "pong"}


@pytest.mark.gen_test
@pytest.mark.gateway_options(limits=Limits(action_timeout=0.2))
async def test_slow_action_times_out_and_is_cancelled(gateway, test_client):
    gateway.add_resource(Napper)
    client = await test_client()
    with pytest.raises(RemoteError) as late:
        await client.call("napper", "nap", {"seconds": 30})
    assert late.value.code == "TIMEOUT" and late.value.details == {"timeout": 0.2}
    assert await client.call("napper", "nap", {"seconds": 0}) == {"slept": 0}
    assert await client.call("napper", "stats") == {"finished": 1, "cancelled": 1}


# -- requests of one connection ------------------------------------------------------------


@pytest.mark.gen_test
async def test_requests_on_one_connection_run_concurrently(test_client):
    client = await test_client()
    slow = asyncio.ensure_future(client.call("lab", "sleep", {"seconds": 0.5, "tag": "s"}))
    fast = await asyncio.wait_for(client.call("lab", "sleep", {"seconds": 0, "tag": "f"}), 0.4)
    assert fast == {"tag": "f"} and not slow.done()
    assert await slow == {"tag": "s"}


@pytest.mark.gen_test
async def test_actions_run_in_their_own_task(test_client):
    """asyncio.timeout inside an action bounds that action, not the connection."""
    client = await test_client()
    reply = await asyncio.wait_for(exchange(client, {"request_id": 1, "resource": "lab", "action": "bounded"}), 1)
    assert reply == {"request_id": 1, "data": {"timed_out": True}}
    assert await exchange(client, {"request_id": 2, "action": "__ping__"}) == {"request_id": 2, "data": "pong"}


# -- each refusal's exact frame, and what the request path hands on ------------------------------------------


class Amount(Schema):
    n = fields.Int(required=True)


class Guarded(Resource):
    """An action behind an ``allow`` hook that records what it was asked."""

    name = "guarded"

    @action(Amount, allow=lambda user, params: user["gate"].append(params) or params["data"]["n"] < 10)
    def spend(self, data):
        """Spend ``n`` (under 10 only)."""
        return {"spent": data["n"]}


class Seed(DrizzleHandler):
    """A Tornado Drizzle handler: its methods get the whole request."""

    name = "seed"

    def echo(self, message):
        return message


class TestAGatedGateway:
    """An ``authenticate`` hook: the token "ann" is a user who records their permission checks (``gated``)."""

    @pytest.fixture
    def gated(self) -> dict:
        return {"name": "ann", "gate": []}

    @pytest.fixture
    def gateway_options(self, gateway_options, gated):
        return {"authenticate": lambda credentials: gated if credentials.query.get("token") == "ann" else None,
                **gateway_options}

    @pytest.fixture
    def gateway(self, gateway):
        gateway.add_resource(Guarded)
        return gateway

    @pytest.mark.gen_test
    async def test_before_authenticating_only_the_open_builtins_answer(self, gated, test_client):
        anonymous = await test_client()
        refusal = {"code": "UNAUTHENTICATED", "error": "authenticate first (send __auth__ with a token)"}
        assert await exchange(anonymous, call(1, "lab", "whoami")) == {"request_id": 1, **refusal}
        assert await exchange(anonymous, call(2, "lab", "__ping__")) == {"request_id": 2, **refusal}  # a resource's
        assert await exchange(anonymous, call(3, None, "__ping__")) == {"request_id": 3, "data": "pong"}
        ann = await test_client(query="token=ann")
        assert await exchange(ann, call(4, "lab", "whoami")) == {"request_id": 4, "data": {
            "user": {"name": "ann", "gate": []}, "has_connection": True, "has_gateway": True}}


    @pytest.mark.gen_test
    async def test_allow_sees_the_user_the_names_and_the_loaded_data(self, gated, test_client):
        ann = await test_client(query="token=ann")
        assert await exchange(ann, call(1, "guarded", "spend", {"n": "3"})) == {"request_id": 1, "data": {"spent": 3}}
        assert await exchange(ann, call(2, "guarded", "spend", {"n": 12})) == {
            "request_id": 2, "code": "FORBIDDEN", "error": "not allowed to call 'spend'"}
        assert gated["gate"] == [{"resource": "guarded", "action": "spend", "data": {"n": 3}},
                                 {"resource": "guarded", "action": "spend", "data": {"n": 12}}]


@pytest.mark.gen_test
async def test_fields_select_what_the_reply_carries(test_client):
    client = await test_client()
    frame = {**call(1, "todos", "create", {"title": "milk"}), "fields": ["id", "done"]}
    assert await exchange(client, frame) == {"request_id": 1, "data": {"id": 1, "done": False}}


@pytest.mark.gen_test
async def test_an_action_may_read_the_whole_request(gateway, test_client):
    gateway.add_resource(Seed)
    client = await test_client()
    frame = call("s1", "seed", "echo", {"x": 1})
    assert await exchange(client, frame) == {"request_id": "s1", "data": frame}


@pytest.mark.gen_test
async def test_requests_while_shutting_down_are_refused_with_their_id(gateway, test_client):
    busy = await test_client()
    client = await test_client()
    pending = asyncio.ensure_future(busy.call("lab", "sleep", {"seconds": 0.5, "tag": "last"}))
    await wait_until(lambda: busy.session.tasks, 5)
    closing = asyncio.ensure_future(gateway.close(timeout=5))  # waits for the sleep: the gateway is shutting down
    await wait_until(lambda: gateway.hub.closing, 5)
    assert await exchange(client, call(7, None, "__ping__")) == {
        "request_id": 7, "code": "SHUTTING_DOWN", "error": "server is shutting down; reconnect"}
    assert await pending == {"tag": "last"}
    await closing


@pytest.mark.gen_test
async def test_a_nesting_bomb_is_refused_with_the_limit_or_the_parsers_depth(test_client):
    bomb = '{"request_id": 3, "data": ' + "[" * 100_000 + "]" * 100_000 + "}"
    client = await test_client()
    assert await exchange(client, bomb) == {
        "request_id": 3, "code": "VALIDATION_ERROR", "error": "frame is nested deeper than 32 levels"}
    async with TestClient(make_test_gateway(limits=Limits(max_depth=None))) as unlimited:
        assert await exchange(unlimited, bomb) == {
            "request_id": 3, "code": "VALIDATION_ERROR", "error": f"frame is nested deeper than {PARSER_DEPTH} levels"}


@pytest.mark.gen_test
@pytest.mark.gateway_options(protocol=LegacyProtocol())  # the dialect that reads binary frames
async def test_binary_frames_of_the_seed_dialect_are_held_to_the_shape_limits(test_client):
    frames: list[dict] = []
    client = await test_client(loads=lambda text: frames.append(json.loads(text)) or frames[-1])
    client.session.receive(json.dumps(call(2, "lab", "plain", nested(40))).encode())
    assert frames == [{"request_id": 2, "code": "VALIDATION_ERROR", "error": "frame is nested deeper than 32 levels"}]
    client.session.receive(json.dumps(call(3, "lab", "plain", {"n": 1})).encode())
    await wait_until(lambda: len(frames) >= 2, 5)
    assert frames[1] == {"request_id": 3, "data": {"kind": "plain", "data": {"n": 1}}}


@pytest.mark.gen_test
async def test_an_internal_error_is_logged_with_the_request_it_answered(test_client, server_errors):
    client = await test_client()
    assert (await exchange(client, call("r9", "lab", "fail")))["code"] == "INTERNAL_ERROR"
    assert [record.getMessage() for record in server_errors()] == ["request 'r9' (lab.fail) failed"]


@pytest.mark.gen_test
async def test_a_request_cancelled_by_anything_but_its_deadline_answers_nothing(test_client):
    client = await test_client()
    pending = asyncio.ensure_future(client.call("lab", "sleep", {"seconds": 5, "tag": "never"}))
    await wait_until(lambda: client.session.tasks, 5)  # the request started
    task = next(iter(client.session.tasks))
    task.cancel()  # as a closing connection or the gateway's shutdown cancels it
    await asyncio.wait([task], timeout=5)
    assert task.cancelled()
    assert await client.ping() == "pong"  # answered after anything the cancel could have sent
    assert not pending.done()
    pending.cancel()


# -- every error is an error frame ---------------------------------------------------------------------


@dataclass
class Pick:
    value: int | str


PickSchema = marshmallow_dataclass.class_schema(Pick)
"""marshmallow_dataclass's ``Union`` field: its messages hold the ``ValidationError`` of each type it tried."""


class Picker(Resource):
    """An action whose input is a Union field, and one whose error's message is not text."""

    name = "picker"

    @action(PickSchema)
    def pick(self, data):
        """Answer with what was picked."""
        return {"picked": data.value}

    @action()
    def odd_error(self, data):
        """Raise an ActionError with an object as its message."""
        raise ActionError("ODD", object())  # type: ignore[arg-type]


def union_details(payload: dict) -> dict:
    """marshmallow's own messages for ``payload``, made JSON-safe by the documented rule (errors are their messages)."""
    with pytest.raises(ValidationError) as caught:
        PickSchema().load(payload)
    messages = caught.value.messages
    assert all(isinstance(error, ValidationError) for error in messages["value"])  # what an encoder cannot write
    return {key: [json_safe(error) for error in errors] for key, errors in messages.items()}


PICK_INVALID = {"request_id": 1, "resource": "picker", "action": "pick", "data": {"value": [1]}}
INVALID_PICK = {"request_id": 1, "code": "INVALID_DATA", "error": "data does not match the action's input schema",
                "details": {"value": [["Not a valid integer."], ["Not a valid string."]]}}


@pytest.mark.gen_test
async def test_a_union_that_fails_to_load_answers_invalid_data_in_process(gateway, test_client):
    gateway.add_resource(Picker)
    client = await test_client(timeout=5)
    assert union_details(PICK_INVALID["data"]) == INVALID_PICK["details"]
    assert await exchange(client, PICK_INVALID) == INVALID_PICK
    assert await exchange(client, {**PICK_INVALID, "request_id": 2, "data": {"value": "7"}}) == {
        "request_id": 2, "data": {"picked": 7}}


@pytest.mark.gen_test
async def test_a_union_that_fails_to_load_answers_invalid_data_over_a_socket(gateway, raw):
    gateway.add_resource(Picker)
    socket = await raw()
    assert await asyncio.wait_for(socket.ask(PICK_INVALID), 5) == INVALID_PICK


@pytest.mark.gen_test
@pytest.mark.gateway_options(protocol=LegacyProtocol())  # a dialect that writes the message as it is
async def test_an_error_frame_that_cannot_be_encoded_answers_internal_error(gateway, test_client, caplog):
    gateway.add_resource(Picker)
    client = await test_client(timeout=5)
    caplog.set_level(logging.ERROR, logger="drizzle_gateway")
    assert await exchange(client, call(3, "picker", "odd_error")) == {
        "request_id": 3, "code": "INTERNAL_ERROR", "error": "Unknown error"}
    assert [record.getMessage() for record in caplog.records if record.name == "drizzle_gateway"] == [
        "request 3 (picker.odd_error): its error frame cannot be encoded"]
