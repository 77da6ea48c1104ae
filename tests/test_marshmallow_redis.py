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


@pytest.mark.gen_test(timeout=10)
async def test_a_selection_through_a_hook_is_right_locally_and_warned_about_across_processes(pair, caplog):
    publisher, receiver = pair
    local, remote = InProcess(publisher), InProcess(receiver)
    await local.listen("envelopes", ["email"])
    await remote.listen("envelopes", ["email"])
    await publisher.publish("envelopes", {"name": "ada", "email": "ada@example.com"})

    async def arrived() -> bool:
        return bool(remote.frames)

    await eventually(arrived, 5)
    assert local.events() == [{"user": {"email": "ada@example.com"}}]  # what a reply with these fields carries
    # the other process has only the full dump; docs/protocol.md says so, and the log does
    assert any("post_dump hook" in r.getMessage() for r in caplog.records if r.name == "drizzle_gateway")
