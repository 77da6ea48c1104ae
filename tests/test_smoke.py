import pytest


@pytest.mark.gen_test
async def test_call_round_trip(connect):
    client = await connect()
    assert await client.call("todos", "create", {"title": "milk"}, fields=["title"]) == {"title": "milk"}
