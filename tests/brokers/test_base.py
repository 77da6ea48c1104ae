"""The broker interface: every broker the package ships has `Broker`'s (and `HistoryBroker`'s) methods.

The gateway and the fan-out call a broker only through these methods, so
a broker must offer each of them as a coroutine with the interface's
parameters. The `Listener` contract (an awaitable a listener returns holds
the publisher) is checked on the in-process broker; the Redis broker's
delivery is tested against a real redis-server in tests/brokers/redis/.
"""

from __future__ import annotations

import asyncio
import inspect

import pytest

from drizzle_gateway.brokers import Broker, BrokerUnavailable, HistoryBroker, MemoryBroker
from drizzle_gateway.brokers.redis import RedisBroker
from drizzle_gateway.wire.history import Position, Retention
from tests.support.polling import wait_until

BROKERS = [MemoryBroker, RedisBroker]


def interface(protocol: type) -> dict[str, inspect.Signature]:
    """The methods ``protocol`` declares (its own and inherited), by name."""
    return {name: inspect.signature(member) for name, member in inspect.getmembers(protocol, inspect.isfunction)
            if not name.startswith("_")}


def parameters(signature: inspect.Signature) -> list[tuple[str, object, object]]:
    """Each parameter's name, kind and default (annotations aside)."""
    return [(p.name, p.kind, p.default) for p in signature.parameters.values()]


def test_the_interface_is_publish_subscribe_unsubscribe_close_and_for_history_three_more():
    assert sorted(interface(Broker)) == ["close", "publish", "subscribe", "unsubscribe"]
    assert sorted(interface(HistoryBroker)) == ["close", "history", "position", "publish", "publish_logged",
                                                "subscribe", "unsubscribe"]


@pytest.mark.parametrize("broker", BROKERS, ids=lambda broker: broker.__name__)
def test_each_shipped_broker_offers_every_method_as_a_coroutine_with_the_interfaces_parameters(broker):
    for name, declared in interface(HistoryBroker).items():
        method = getattr(broker, name)
        assert inspect.iscoroutinefunction(method), name
        assert parameters(inspect.signature(method)) == parameters(declared), name


def test_an_unreachable_store_is_an_exception_the_gateway_can_tell_apart():
    assert issubclass(BrokerUnavailable, Exception)
    assert not issubclass(BrokerUnavailable, (OSError, RuntimeError))


@pytest.mark.gen_test
async def test_publish_returns_once_the_listener_has_room():
    broker = MemoryBroker()
    room = asyncio.Event()
    heard: list[tuple] = []

    def listener(*message):
        heard.append(message)
        return asyncio.ensure_future(room.wait())  # congested: the publisher waits for this

    await broker.subscribe("chat", listener)
    publishing = asyncio.ensure_future(broker.publish("chat", {"n": 1}))
    await wait_until(lambda: heard, 5)  # the publish ran up to its listener in one step: it waits, or is done
    assert heard == [("chat", {"n": 1})] and not publishing.done()
    room.set()
    await asyncio.wait_for(publishing, 5)
    await broker.unsubscribe("chat")
    await broker.publish("chat", {"n": 2})
    assert heard == [("chat", {"n": 1})]


@pytest.mark.gen_test
async def test_history_listeners_hear_the_channel_data_and_position():
    broker = MemoryBroker()
    heard: list[tuple] = []
    await broker.subscribe("feed", lambda *message: heard.append(message))
    offset = await broker.publish_logged("feed", {"n": 1}, Retention(5))
    position = await broker.position("feed", Retention(5))
    assert offset == position.offset == 1
    assert heard == [("feed", {"n": 1}, Position(position.epoch, 1))]
    await broker.close()
