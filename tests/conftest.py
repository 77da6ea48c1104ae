"""Shared fixtures: the gateway, in-process clients, and a real listening gateway with real websocket clients.

``gateway`` is built with ``gateway_options`` (keyword arguments of `Gateway`):
a test gives its own with ``@pytest.mark.gateway_options(limits=...)``, a
module by overriding the fixture; configuration is never assigned to a
gateway after it is built.
``test_client`` opens `TestClient` instances on ``gateway`` in process: the
request and publish paths without a socket, for what the gateway replies.
pytest-tornado's ``app`` fixture serves the gateway on ``http_port``;
tests of the transport use ``http_server`` to start it and ``connect`` to
open clients (``raw`` for hand-made frames). ``served`` serves it as
``drizzle-gateway serve`` does, with a short handshake timeout.
``redis_server`` starts a redis-server of the test module's own;
``open_client`` and ``raw_socket`` open clients on gateway processes.
Helpers that are not fixtures live in tests/support/.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import pytest
import tornado.web
from jsonschema import Draft202012Validator
from tornado.testing import bind_unused_port
from tornado.websocket import websocket_connect

import drizzle_gateway.gateway
from drizzle_gateway import Gateway
from drizzle_gateway.client import Client
from drizzle_gateway.runtime.limits import Limits
from drizzle_gateway.testing import TestClient
from tests.support.handshakes import HANDSHAKE_TIMEOUT
from tests.support.redis_server import GatewayProcess, RedisServer
from tests.support.serve_app import make_gateway as make_test_gateway


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "gateway_options(**options): keyword arguments of Gateway for the gateway "
                                       "fixture (limits=..., authenticate=...)")


@pytest.fixture
def gateway_options(request: pytest.FixtureRequest) -> dict[str, Any]:
    """Keyword arguments of `Gateway` for ``gateway``: the test's ``gateway_options`` mark, if any."""
    marks = reversed(list(request.node.iter_markers("gateway_options")))  # the closest mark wins
    return {key: value for mark in marks for key, value in mark.kwargs.items()}


@pytest.fixture
def gateway(gateway_options: dict[str, Any]) -> Gateway:
    """The todo example's gateway plus the test resources and topics, built with ``gateway_options``."""
    return make_test_gateway(**gateway_options)


@pytest.fixture
def test_client(gateway: Gateway, io_loop):
    """Open `TestClient` instances on ``gateway`` in process (keywords: `TestClient`'s); all closed after the test."""
    clients: list[TestClient] = []

    async def _open(**kwargs) -> TestClient:
        client = await TestClient(gateway, **kwargs).connect()
        clients.append(client)
        return client

    yield _open

    async def close_all() -> None:  # sessions end: their requests are cancelled, their subscriptions dropped
        for client in clients:
            await client.close()
        # the fan-out leaves the channels nobody listens to any more
        await asyncio.wait_for(gateway.hub.fanout.drain(), 5)

    io_loop.run_sync(close_all)


@pytest.fixture
def app(gateway: Gateway) -> tornado.web.Application:
    return tornado.web.Application(gateway.routes())


@pytest.fixture
def ws_url(http_server, http_port: int) -> str:
    return f"ws://127.0.0.1:{http_port}/ws"


@pytest.fixture
def connect(ws_url: str):
    """Open `Client` instances on the test server; all closed after the test."""
    clients: list[Client] = []

    async def _connect(**kwargs) -> Client:
        client = await Client(ws_url, **kwargs).connect()
        clients.append(client)
        return client

    yield _connect
    for client in clients:
        if client._ws is not None:
            client._ws.close()


class RawSocket:
    """A websocket speaking raw frames, to send what no well-behaved client would."""

    def __init__(self, ws) -> None:
        self.ws = ws

    async def send(self, frame, binary: bool = False) -> None:
        if not isinstance(frame, (str, bytes)):
            frame = json.dumps(frame)
        await self.ws.write_message(frame, binary=binary)

    async def recv(self) -> dict:
        text = await self.ws.read_message()
        assert text is not None, f"socket closed: {self.ws.close_code} {self.ws.close_reason}"
        return json.loads(text)

    async def ask(self, frame, binary: bool = False) -> dict:
        await self.send(frame, binary)
        return await self.recv()


@pytest.fixture
def raw(ws_url: str):
    """Open `RawSocket` instances on the test server."""
    sockets = []

    async def _raw(subprotocols=("drizzle.v1",)) -> RawSocket:
        ws = await websocket_connect(ws_url, subprotocols=list(subprotocols))
        sockets.append(ws)
        return RawSocket(ws)

    yield _raw
    for ws in sockets:
        ws.close()


@pytest.fixture
def server_errors(caplog):
    """Records of the drizzle_gateway logger at ERROR and above."""
    caplog.set_level(logging.ERROR, logger="drizzle_gateway")
    return lambda: [r for r in caplog.records if r.name == "drizzle_gateway" and r.levelno >= logging.ERROR]


@pytest.fixture(autouse=True)
def schema_documents_are_valid_json_schema(monkeypatch):
    """Every ``__schema__`` document a test builds has components valid against the 2020-12 metaschema."""
    describe = drizzle_gateway.gateway.describe

    def checked(*args, **kwargs) -> dict:
        document = describe(*args, **kwargs)
        for component in document["components"]["schemas"].values():
            Draft202012Validator.check_schema(component)
        return document

    monkeypatch.setattr(drizzle_gateway.gateway, "describe", checked)


# -- gateway processes on a redis-server of the test module's own (tests/support/redis_server.py) --


@pytest.fixture
def open_client(io_loop):
    """Open `Client` instances on a gateway process; all closed after the test."""
    clients: list[Client] = []

    async def _open(gateway: GatewayProcess, timeout: float = 10.0) -> Client:
        client = await Client(gateway.url, timeout=timeout).connect()
        clients.append(client)
        return client

    yield _open
    for client in clients:
        if client._ws is not None:
            client._ws.close()


@pytest.fixture
def raw_socket(io_loop):
    """Open raw websockets (`RawSocket`) on a gateway process; all closed after the test."""
    sockets: list = []

    async def _open(gateway: GatewayProcess) -> RawSocket:
        ws = await websocket_connect(gateway.url, subprotocols=["drizzle.v1"])
        sockets.append(ws)
        return RawSocket(ws)

    yield _open
    for ws in sockets:
        ws.close()


@pytest.fixture(scope="module")
def redis_server():
    """A redis-server of the test module's own, stopped after the module."""
    server = RedisServer().start()
    yield server
    server.stop()


# -- the gateway served as `drizzle-gateway serve` does, for attacks on the handshake --


@pytest.fixture
def served(gateway_options: dict[str, Any], io_loop):
    """A test gateway of its own (built like ``gateway``, with a 1 s handshake timeout), served by its
    `Gateway.http_server`; yields its port."""
    gateway = make_test_gateway(**{**gateway_options, "limits": Limits(handshake_timeout=HANDSHAKE_TIMEOUT)})
    server = gateway.http_server()
    sock, port = bind_unused_port()
    server.add_sockets([sock])
    yield port
    server.stop()
    io_loop.run_sync(server.close_all_connections)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Show what tests report with ``record_property("suite_summary", line)``: the ecosystem differential's counts."""
    lines = [value for report in terminalreporter.stats.get("passed", [])
             for key, value in getattr(report, "user_properties", ()) if key == "suite_summary"]
    if lines:
        terminalreporter.write_sep("-", "suite summary")
        for line in lines:
            terminalreporter.write_line(line)
