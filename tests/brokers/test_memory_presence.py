"""The memory broker's presence: members counted by key, joins and leaves at once, at most max_members."""

from __future__ import annotations

import pytest

from drizzle_gateway.brokers import MemoryBroker
from drizzle_gateway.brokers.base import PresenceBroker
from drizzle_gateway.brokers.memory_presence import MemoryPresence
from drizzle_gateway.wire.presence import Change, Member


@pytest.mark.gen_test
async def test_a_member_joins_with_its_first_connection_and_leaves_with_its_last():
    store = MemoryPresence()
    heard: list[tuple[str, Change]] = []
    store.listen(lambda channel, change: heard.append((channel, change)))
    assert await store.update("c", "ada", {"id": "ada"}, 1)
    assert await store.update("c", "ada", {"id": "ada", "tab": 2}, 2)
    assert await store.members("c") == [Member("ada", {"id": "ada"}, 2)]  # the first connection's entry
    assert await store.update("c", "ada", {"id": "ada"}, 1)
    assert await store.update("c", "ada", {"id": "ada"}, 0)
    assert await store.update("c", "ada", {"id": "ada"}, 0)  # gone already: nothing more
    assert heard == [("c", Change("join", "ada", {"id": "ada"})), ("c", Change("leave", "ada", {"id": "ada"}))]
    assert await store.members("c") == []


@pytest.mark.gen_test
async def test_a_full_channel_refuses_new_members_only():
    store = MemoryPresence()
    assert await store.update("c", "a", {}, 1, max_members=2)
    assert await store.update("c", "b", {}, 1, max_members=2)
    assert not await store.update("c", "c", {}, 1, max_members=2)
    assert await store.update("c", "a", {}, 3, max_members=2)
    assert await store.update("other", "c", {}, 1, max_members=2)
    assert [member.key for member in await store.members("c")] == ["a", "b"]


def test_the_memory_broker_keeps_presence():
    broker = MemoryBroker()
    assert isinstance(broker, PresenceBroker)
    assert isinstance(broker.presence, MemoryPresence)
