"""Handshakes: the status of one, and one that never finishes (it sends part of its opening and stalls)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from tornado.httpclient import HTTPClientError, HTTPRequest
from tornado.websocket import websocket_connect

HANDSHAKE_TIMEOUT = 1.0  # seconds: the `handshake_timeout` of the `served` fixture (tests/conftest.py)
SLACK = 2.0  # seconds past it a stalled connection may wait for its close on a loaded machine


async def stall(port: int, opening: bytes, opened: Callable[[], object] = lambda: None) -> float:
    """Send ``opening`` and nothing more; the seconds until the server closes the connection.

    ``opened()`` is called once the connection is made and ``opening`` written.
    """
    loop = asyncio.get_running_loop()
    started = loop.time()  # before connecting: the server's clock for this connection cannot start earlier
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(opening)
    opened()
    try:
        assert await asyncio.wait_for(reader.read(), HANDSHAKE_TIMEOUT + SLACK) == b""  # closed, nothing answered
        return loop.time() - started
    finally:
        writer.close()


WRONG_TOKEN = {"Authorization": "Bearer wrong"}
"""Handshake headers with a token every test hook refuses."""


async def handshake_status(url: str, headers: dict[str, str] | None = None, source: str | None = None) -> int:
    """The HTTP status of a websocket handshake to ``url`` from loopback address ``source`` (101: it opened)."""
    request = HTTPRequest(url, headers=headers, network_interface=source)
    try:
        ws = await websocket_connect(request)
    except HTTPClientError as refused:
        return refused.code
    ws.close()
    return 101
