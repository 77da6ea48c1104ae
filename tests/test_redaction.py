"""Credentials stay out of the log lines the gateway causes."""

from __future__ import annotations

import logging

import pytest

from bench.ports import free_port
from drizzle_gateway.client import Client
from drizzle_gateway.redaction import redact


@pytest.fixture
def all_logs(caplog):
    """Every record at INFO and above, Tornado's access log included."""
    caplog.set_level(logging.INFO)
    return lambda: [record.getMessage() for record in caplog.records]


@pytest.mark.gen_test
async def test_handshake_tokens_are_redacted_from_the_access_log(gateway, ws_url, all_logs):
    async with Client(ws_url + "?room=lobby&token=s3cret-token") as client:
        assert await client.ping() == "pong"
    lines = all_logs()
    assert any(line.startswith("101 GET /ws?room=lobby&token=[redacted] (") for line in lines), lines
    assert not [line for line in lines if "s3cret" in line]


@pytest.mark.gen_test
async def test_redis_broker_logs_its_url_without_credentials(all_logs):
    redis_broker = pytest.importorskip("drizzle_gateway.brokers.redis")
    port = free_port()  # nothing listens: the broker logs the outage with its URL
    broker = redis_broker.RedisBroker(f"redis://user:p@ss@127.0.0.1:{port}/0?password=pw2", timeout=0.5)
    try:
        await broker.subscribe("chat.lobby", lambda channel, data: None)
    finally:
        await broker.close()
    outage = [line for line in all_logs() if "is unreachable" in line]
    assert outage and outage[0].startswith(f"redis at redis://127.0.0.1:{port}/0 is unreachable"), outage
    assert repr(broker) == f"RedisBroker('redis://127.0.0.1:{port}/0', prefix='drizzle:')"
    assert not [line for line in all_logs() if "p@ss" in line or "ss@" in line or "pw2" in line]


@pytest.mark.parametrize(("line", "expected"), [
    ("101 GET /ws?token=abc (127.0.0.1) 0.5ms", "101 GET /ws?token=[redacted] (127.0.0.1) 0.5ms"),
    ("GET /ws?a=1&Access_Token=x&b=2", "GET /ws?a=1&Access_Token=[redacted]&b=2"),
    ("uri='/ws?password=hunter2'", "uri='/ws?password=[redacted]'"),
    ("connecting to redis://user:p@ss@host:6379/0", "connecting to redis://[redacted]@host:6379/0"),
    ("GET /ws?room=lobby (127.0.0.1)", "GET /ws?room=lobby (127.0.0.1)"),
    ("ada@example.com wrote", "ada@example.com wrote"),
])
def test_redact(line, expected):
    assert redact(line) == expected
