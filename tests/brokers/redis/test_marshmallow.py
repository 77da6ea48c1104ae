"""The JSON rule on the Redis path: what crosses processes arrives with the digits it left with."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from marshmallow import ValidationError

from drizzle_gateway import Gateway
from tests.support import differential
from tests.support.inprocess import InProcess
from tests.support.polling import eventually
from tests.support.realworld import ADA_WIRE, ada, make_gateway

pytest.importorskip("redis")
RedisBroker = pytest.importorskip("drizzle_gateway.brokers.redis.broker").RedisBroker


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


@pytest.fixture
def differential_pair(redis_server, io_loop) -> tuple[Gateway, Gateway]:
    """Two differential gateways (every built-in field type) meeting only through Redis."""
    gateways = []
    for _ in range(2):
        gateway = differential.make_gateway()
        gateway.use_broker(RedisBroker(redis_server.url, prefix="differential:"))
        gateways.append(gateway)
    yield gateways[0], gateways[1]
    for gateway in gateways:
        io_loop.run_sync(gateway.close)


@pytest.mark.gen_test(timeout=30)
async def test_every_field_type_crosses_redis_as_marshmallow_dumped_it(differential_pair):
    publisher, receiver = differential_pair
    expected: dict[str, list] = {}
    listeners = {}
    for case in differential.CASES:
        name = f"case_{case.id}"
        schema = publisher.state["schemas"][name]
        listeners[name] = InProcess(receiver)
        await listeners[name].listen(name, ["value"])
        for value in case.samples:
            obj = {"value": value, "other": 7}
            try:
                await publisher.publish(name, obj)
            except ValidationError:
                continue  # does not fit: reaches nobody
            expected.setdefault(name, []).append(differential.render(schema(only=("value",)).dump(obj)))

    async def arrived() -> bool:
        return all(len(listeners[name].frames) == len(values) for name, values in expected.items())

    assert await eventually(arrived, 10)
    for name, values in expected.items():
        got = [json.loads(frame, parse_float=Decimal, parse_int=Decimal)["data"] for frame in listeners[name].frames]
        assert all(map(differential.same_json, got, values)), (name, got, values)
    assert len(expected) >= len(differential.CASES) - 3
