"""Resources and actions: what is reachable, how input and output are handled, errors."""

from __future__ import annotations

import asyncio

import pytest

from drizzle_gateway.client import RemoteError


async def remote_error(coro) -> RemoteError:
    with pytest.raises(RemoteError) as caught:
        await coro
    return caught.value


@pytest.mark.gen_test
async def test_create_loads_input_and_dumps_output(connect):
    client = await connect()
    todo = await client.call("todos", "create", {"title": "milk", "tags": ["shop"]})
    assert todo == {"id": 1, "title": "milk", "done": False, "tags": ["shop"],
                    "owner": {"name": "ada", "email": "ada@example.com"}}
    assert await client.call("todos", "list") == [todo]


@pytest.mark.gen_test
async def test_invalid_data_details_are_marshmallow_messages(raw):
    sock = await raw()
    reply = await sock.ask({"request_id": 1, "resource": "todos", "action": "create", "data": {}})
    assert reply == {"request_id": 1, "code": "INVALID_DATA",
                     "error": "data does not match the action's input schema",
                     "details": {"title": ["Missing data for required field."]}}
    reply = await sock.ask({"request_id": 2, "resource": "todos", "action": "create",
                            "data": {"title": "", "colour": "red"}})
    assert reply["details"] == {"title": ["Length must be between 1 and 200."], "colour": ["Unknown field."]}


@pytest.mark.gen_test
async def test_unknown_resource_and_action(raw):
    sock = await raw()
    reply = await sock.ask({"request_id": 1, "resource": "nope", "action": "list"})
    assert reply == {"request_id": 1, "code": "RESOURCE_NOT_FOUND", "error": "resource 'nope' not found"}
    reply = await sock.ask({"request_id": 2, "resource": "todos", "action": "destroy"})
    assert reply == {"request_id": 2, "code": "ACTION_NOT_FOUND",
                     "error": "action 'destroy' not found in resource 'todos'"}
    reply = await sock.ask({"request_id": 3, "action": "__nope__"})
    assert reply["code"] == "ACTION_NOT_FOUND"


@pytest.mark.gen_test
@pytest.mark.parametrize("name", ["helper", "_private", "not_an_action", "__init__", "__class__", "publish",
                                  "subscribe", "get_action", "user", "__drizzle_action__"])
async def test_only_decorated_methods_are_reachable(connect, name):
    client = await connect()
    error = await remote_error(client.call("lab", name))
    assert error.code == "ACTION_NOT_FOUND"


@pytest.mark.gen_test
async def test_plain_coroutine_and_async_actions(connect):
    client = await connect()
    assert await client.call("lab", "plain", {"x": 1}) == {"kind": "plain", "data": {"x": 1}}
    assert await client.call("lab", "legacy") == {"kind": "coroutine"}
    assert await client.call("lab", "sleep", {"seconds": 0, "tag": "a"}) == {"tag": "a"}


@pytest.mark.gen_test
async def test_action_sees_connection_gateway_and_user(connect):
    client = await connect()
    assert await client.call("lab", "whoami") == {"user": None, "has_connection": True, "has_gateway": True}


@pytest.mark.gen_test
async def test_action_error_passes_through(raw):
    sock = await raw()
    reply = await sock.ask({"request_id": "q", "resource": "lab", "action": "refuse"})
    assert reply == {"request_id": "q", "code": "QUOTA_EXCEEDED", "error": "too many todos", "details": {"limit": 3}}


@pytest.mark.gen_test
@pytest.mark.parametrize("action", ["fail", "unserializable", "bad_output"])
async def test_unexpected_failures_are_internal_errors_without_details(raw, server_errors, action):
    sock = await raw()
    reply = await sock.ask({"request_id": 5, "resource": "lab", "action": action})
    assert reply == {"request_id": 5, "code": "INTERNAL_ERROR",
                     "error": "internal error; the server log has the details"}
    assert "Traceback" not in str(reply) and "secret" not in str(reply)
    assert len(server_errors()) == 1 and server_errors()[0].exc_info is not None
    assert await sock.ask({"request_id": 6, "action": "__ping__"}) == {"request_id": 6, "data": "pong"}


@pytest.mark.gen_test
async def test_requests_on_one_connection_run_concurrently(raw):
    sock = await raw()
    await sock.send({"request_id": "slow", "resource": "lab", "action": "sleep", "data": {"seconds": 1, "tag": "s"}})
    await sock.send({"request_id": "fast", "resource": "lab", "action": "sleep", "data": {"seconds": 0, "tag": "f"}})
    first = await asyncio.wait_for(sock.recv(), 0.9)
    assert first == {"request_id": "fast", "data": {"tag": "f"}}
    assert await sock.recv() == {"request_id": "slow", "data": {"tag": "s"}}


@pytest.mark.gen_test
async def test_action_error_from_example_carries_details(connect):
    client = await connect()
    error = await remote_error(client.call("todos", "get", {"id": 99}))
    assert (error.code, error.details) == ("NOT_FOUND", {"id": 99})


@pytest.mark.gen_test
async def test_actions_run_in_their_own_task(raw):
    """asyncio.timeout inside an action bounds that action, not the connection."""
    sock = await raw()
    reply = await asyncio.wait_for(sock.ask({"request_id": 1, "resource": "lab", "action": "bounded"}), 1)
    assert reply == {"request_id": 1, "data": {"timed_out": True}}
    assert await sock.ask({"request_id": 2, "action": "__ping__"}) == {"request_id": 2, "data": "pong"}
