"""`Connection`, the websocket handler: its handshake checks and the subprotocol it speaks, over real sockets.

The Host is checked before the Origin, and both before the ``authenticate``
hook; a browser's ``Sec-Fetch-Site: same-origin`` passes the origin check;
``drizzle.v1`` is spoken when asked for, and a client that asks for no
subprotocol is served too. Limits Tornado enforces for it (frame size,
pings) are tested in tests/runtime/test_limits.py, the auth throttle's 429
in tests/runtime/test_auth.py.
"""

from __future__ import annotations

import json

import pytest
from tornado.httpclient import HTTPClientError, HTTPRequest
from tornado.websocket import websocket_connect

from drizzle_gateway.wire.dialect import SUBPROTOCOL

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
