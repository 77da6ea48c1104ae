"""Resources and actions, in process: what is reachable, how input and output are handled, what an action sees."""

from __future__ import annotations

import pytest

from drizzle_gateway.client import RemoteError


async def remote_error(coro) -> RemoteError:
    with pytest.raises(RemoteError) as caught:
        await coro
    return caught.value


@pytest.mark.gen_test
async def test_create_loads_input_and_dumps_output(test_client):
    client = await test_client()
    todo = await client.call("todos", "create", {"title": "milk", "tags": ["shop"]})
    assert todo == {"id": 1, "title": "milk", "done": False, "tags": ["shop"],
                    "owner": {"name": "ada", "email": "ada@example.com"}}
    assert await client.call("todos", "list") == [todo]


@pytest.mark.gen_test
@pytest.mark.parametrize("name", ["helper", "_private", "not_an_action", "__init__", "__class__", "publish",
                                  "subscribe", "get_action", "user", "__drizzle_action__"])
async def test_only_decorated_methods_are_reachable(test_client, name):
    client = await test_client()
    error = await remote_error(client.call("lab", name))
    assert error.code == "ACTION_NOT_FOUND"


@pytest.mark.gen_test
async def test_plain_coroutine_and_async_actions(test_client):
    client = await test_client()
    assert await client.call("lab", "plain", {"x": 1}) == {"kind": "plain", "data": {"x": 1}}
    assert await client.call("lab", "legacy") == {"kind": "coroutine"}
    assert await client.call("lab", "sleep", {"seconds": 0, "tag": "a"}) == {"tag": "a"}


@pytest.mark.gen_test
async def test_action_sees_connection_gateway_and_user(test_client):
    client = await test_client()
    assert await client.call("lab", "whoami") == {"user": None, "has_connection": True, "has_gateway": True}


@pytest.mark.gen_test
async def test_action_error_from_example_carries_details(test_client):
    client = await test_client()
    error = await remote_error(client.call("todos", "get", {"id": 99}))
    assert (error.code, error.details) == ("NOT_FOUND", {"id": 99})
