"""`Connection`, the websocket handler: its handshake checks and the subprotocol it speaks, over real sockets.

The Host is checked before the Origin, and both before the ``authenticate``
hook; a browser's ``Sec-Fetch-Site: same-origin`` passes the origin check;
``drizzle.v1`` is spoken when asked for, and a client that asks for no
subprotocol is served too. Limits Tornado enforces for it (frame size,
pings) are tested in tests/runtime/test_limits.py, the auth throttle's 429
in tests/runtime/test_auth.py.
"""

from __future__ import annotations

import gc
import json
import sys

import pytest
import tornado.web
import tornado.websocket
from tornado.httpclient import HTTPClientError, HTTPRequest
from tornado.websocket import websocket_connect

from drizzle_gateway.wire.dialect import SUBPROTOCOL
from tests.support.polling import wait_until
from tests.support.ports import free_port

hook_calls: list[str | None] = []


def counting(credentials) -> None:
    """An ``authenticate`` hook that knows no one and notes each handshake's Origin."""
    hook_calls.append(credentials.headers.get("Origin"))


async def status(ws_url: str, **headers: str) -> int:
    """The HTTP status of a handshake with ``headers``: 101 when it opened."""
    try:
        ws = await websocket_connect(HTTPRequest(ws_url, headers=headers))
    except HTTPClientError as refused:
        return refused.code
    ws.close()
    return 101


@pytest.mark.gen_test
@pytest.mark.gateway_options(allowed_hosts=["chat.example.com"], authenticate=counting)
async def test_the_host_is_checked_before_the_origin_and_both_before_the_hook(ws_url):
    hook_calls.clear()
    assert await status(ws_url, Host="evil.example", Origin="https://evil.example") == 400
    assert await status(ws_url, Host="chat.example.com", Origin="https://evil.example") == 403
    assert hook_calls == []
    assert await status(ws_url, Host="chat.example.com", Origin="https://chat.example.com") == 101
    assert hook_calls == ["https://chat.example.com"]


@pytest.mark.gen_test
async def test_a_same_origin_fetch_passes_the_origin_check(ws_url):
    assert await status(ws_url, Origin="https://elsewhere.example") == 403
    assert await status(ws_url, Origin="https://elsewhere.example", **{"Sec-Fetch-Site": "same-origin"}) == 101
    assert await status(ws_url, Origin="https://elsewhere.example", **{"Sec-Fetch-Site": "none"}) == 101
    assert await status(ws_url, Origin="https://elsewhere.example", **{"Sec-Fetch-Site": "cross-site"}) == 403


@pytest.mark.gen_test
@pytest.mark.parametrize(("asked", "spoken"), [([SUBPROTOCOL], SUBPROTOCOL), (["other", SUBPROTOCOL], SUBPROTOCOL),
                                                ([], None), (["other"], None)])
async def test_drizzle_v1_is_spoken_when_asked_for_and_no_subprotocol_is_served_too(ws_url, asked, spoken):
    ws = await websocket_connect(ws_url, subprotocols=asked)
    try:
        assert ws.selected_subprotocol == spoken
        await ws.write_message(json.dumps({"request_id": 1, "action": "__ping__"}))
        assert json.loads(await ws.read_message()) == {"request_id": 1, "data": "pong"}
    finally:
        ws.close()


class Bare(tornado.websocket.WebSocketHandler):
    """Bare Tornado's handler, to compare an idle connection's footprint with."""


@pytest.mark.gen_test(timeout=20)
async def test_an_idle_connection_keeps_dicts_no_bigger_than_bare_tornados_and_no_outbox(gateway, ws_url):
    bare_port = free_port()
    bare_server = tornado.web.Application([("/ws", Bare)]).listen(bare_port, "127.0.0.1")
    bare_client = await websocket_connect(f"ws://127.0.0.1:{bare_port}/ws")
    client = await websocket_connect(ws_url)
    try:
        await wait_until(lambda: gateway.hub.session_count == 1, 5)
        (session,) = gateway.hub.sessions
        connection = session.peer
        bare = next(o for o in gc.get_objects() if type(o) is Bare)
        # Tornado's own attributes stay in a small shared-key dict; the gateway's are in slots
        assert sys.getsizeof(vars(connection)) <= sys.getsizeof(vars(bare))
        assert sys.getsizeof(vars(connection.ws_connection)) <= sys.getsizeof(vars(bare.ws_connection))
        assert connection.outbox is None and not session.channels and not session.tasks  # made on first use
        client.write_message(json.dumps({"request_id": 1, "action": "__ping__"}))
        assert json.loads(await client.read_message())["data"] == "pong"
        assert connection.outbox is not None
    finally:
        client.close()
        bare_client.close()
        bare_server.stop()
