"""The JSON rule on the Redis path: what crosses processes arrives with the digits it left with."""

from __future__ import annotations

from decimal import Decimal

import pytest

from drizzle_gateway import Gateway
from tests import redis_support
from tests.inprocess import InProcess
from tests.realworld import ADA_WIRE, ada, make_gateway
from tests.redis_support import eventually

pytest.importorskip("redis")
RedisBroker = pytest.importorskip("drizzle_gateway.brokers.redis").RedisBroker
redis_server = redis_support.redis_server


@pytest.fixture
def pair(redis_server, io_loop) -> tuple[Gateway, Gateway]:
    """Two gateways, as two processes of one app would be: they meet only through Redis."""
    gateways = []
    for _ in range(2):
        gateway = make_gateway()
        gateway.use_broker(RedisBroker(redis_server.url, prefix="exact:"))
        gateways.append(gateway)
    yield gateways[0], gateways[1]
    for gateway in gateways:
        io_loop.run_sync(gateway.close)


@pytest.mark.gen_test(timeout=10)
async def test_decimals_and_selections_cross_redis_exactly(pair):
    publisher, receiver = pair
    whole, partial = InProcess(receiver), InProcess(receiver)
    await whole.listen("prices")
    await partial.listen("users", ["firstName", "balance", "balance_text"])
    await publisher.publish("prices", {"amount": Decimal("12345678901234567890.10"), "label": Decimal("1.10")})
    await publisher.publish("users", ada())
    async def arrived() -> bool:
        return bool(whole.frames and partial.frames)

    await eventually(arrived, 5)
    assert whole.frames == ['{"topic":"prices","data":{"amount":12345678901234567890.10,"label":"1.10"}}']
    assert partial.events() == [{k: ADA_WIRE[k] for k in ("firstName", "balance", "balance_text")}]
