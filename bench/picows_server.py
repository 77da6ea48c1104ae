"""The second baseline: a minimal picows server, the ceiling for a Python websocket server here.

picows parses and builds frames in C; this server decodes each request with
orjson, answers the same ``data`` as the gateway's actions and the Tornado
echo (no schema, no validation), and sends each event to each member with
one ``send`` (no batching, no flow control). It speaks the bench's protocol
only: ``?fanout=1`` joins the members (greeted with ``{"hello":true}``), a
``__publish__`` frame goes to every member.
"""

from __future__ import annotations

from typing import Any

import orjson
from picows import WSFrame, WSListener, WSMsgType, WSTransport, WSUpgradeRequest, ws_create_server

from bench.app import AUTHOR

HELLO = b'{"hello":true}'


class Echo(WSListener):
    """One connection: requests answered, publishes handed to every member."""

    def __init__(self, server: PicowsServer, member: bool) -> None:
        self.server = server
        self.member = member
        self.transport: WSTransport | None = None

    def on_ws_connected(self, transport: WSTransport) -> None:
        self.transport = transport
        if self.member:
            self.server.members.add(self)
            transport.send(WSMsgType.TEXT, HELLO)

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        self.server.members.discard(self)

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        if frame.msg_type == WSMsgType.CLOSE:
            transport.send_close(frame.get_close_code())
            transport.disconnect()
            return
        if frame.msg_type != WSMsgType.TEXT:
            return
        request = orjson.loads(frame.get_payload_as_bytes())
        data = request["data"]
        reply: dict[str, Any]
        if request.get("action") == "__publish__":
            self.server.broadcast(orjson.dumps({"topic": data["topic"], "data": data["payload"]}))
            reply = {"topic": data["topic"]}
        elif request.get("resource") == "posts":
            reply = {"id": 7, **data, "author": AUTHOR}
        else:
            reply = {"id": 1, **data, "total": data["quantity"] * data["price"]}
        transport.send(WSMsgType.TEXT, orjson.dumps({"request_id": request["request_id"], "data": reply}))


class PicowsServer:
    """The picows baseline: ``listen`` then serve; ``publish`` sends one event to every member."""

    app = None

    def __init__(self) -> None:
        self.members: set[Echo] = set()

    async def listen(self, port: int) -> None:
        def factory(request: WSUpgradeRequest) -> Echo:
            return Echo(self, b"fanout=1" in (request.path or b""))

        await ws_create_server(factory, "127.0.0.1", port, backlog=4096)

    def subscribers(self) -> int:
        return len(self.members)

    def broadcast(self, text: bytes) -> None:
        for member in self.members:
            assert member.transport is not None
            member.transport.send(WSMsgType.TEXT, text)

    async def publish(self, payload: dict) -> None:
        self.broadcast(orjson.dumps({"topic": "feed", "data": payload}))
