"""What the benchmarks serve: a realistic action and a typed topic, plus the bare baselines.

Each ``make_*`` function returns an object with ``app`` (something to listen with)
and ``publish(payload)`` (one fan-out of one message), so the publisher loop in
`bench.server` drives the gateway, bare Tornado and python-socketio the same way.
"""

from __future__ import annotations

import json
from typing import Any

import tornado.web
import tornado.websocket
from marshmallow import Schema, fields

from drizzle_gateway import Gateway, Limits, Resource, Topic, action

SELECTIONS = (("seq", "ts", "text"), ("seq", "ts", "user"), ("seq", "ts", "room", "score"))
"""The three field selections of the fan-out-with-selection scenario."""


class OrderInput(Schema):
    sku = fields.Str(required=True)
    quantity = fields.Int(required=True)
    price = fields.Float(required=True)
    note = fields.Str(required=True)


class Order(Schema):
    id = fields.Int()
    sku = fields.Str()
    quantity = fields.Int()
    price = fields.Float()
    note = fields.Str()
    total = fields.Float()


class Tick(Schema):
    seq = fields.Int(required=True)
    ts = fields.Float(required=True)
    user = fields.Str(required=True)
    room = fields.Str(required=True)
    text = fields.Str(required=True)
    score = fields.Float(required=True)


feed = Topic("feed", Tick)


class Orders(Resource):
    """The request/response scenario's action: 4 fields loaded, 6 dumped."""

    name = "orders"

    @action(input=OrderInput, output=Order)
    async def create(self, data: dict) -> dict:
        """Price an order."""
        return {"id": 1, **data, "total": data["quantity"] * data["price"]}


TEXT = "Grüße — the quick brown fox jumps over the lazy dog"


def tick(seq: int, ts: float, text: str = TEXT) -> dict[str, Any]:
    """A fan-out payload: ~150 bytes as an event frame with the default ``text``."""
    return {"seq": seq, "ts": ts, "user": "user-0042", "room": "lobby", "text": text, "score": 12.5}


def padded_text(frame_bytes: int) -> str:
    """A ``text`` that makes a tick's event frame about ``frame_bytes`` long."""
    size = max(len(TEXT.encode()), frame_bytes - 150 + len(TEXT.encode()))
    repeated = (TEXT + " ") * (size // len(TEXT.encode()) + 1)
    return repeated.encode()[:size].decode(errors="ignore")


def order_request(request_id: int) -> dict[str, Any]:
    """One request/response frame for the ``orders.create`` action."""
    return {"request_id": request_id, "resource": "orders", "action": "create",
            "data": {"sku": "SKU-123", "quantity": 3, "price": 9.5, "note": "leave at the door"}}


class GatewayServer:
    """The gateway under test: default `Limits`, except the per-connection rate limit.

    ``history`` declares the ``feed`` topic with that much history (events then carry offsets).

    A load generator sends thousands of requests a second on one connection,
    which the default rate limit (100 frames/s) is there to refuse.
    """

    def __init__(self, history: int | None = None, **gateway_options: Any) -> None:
        gateway_options.setdefault("limits", Limits(rate=None))
        self.topic = Topic("feed", Tick, history=history) if history else feed
        self.gateway = Gateway([Orders], [self.topic], **gateway_options)
        self.app = tornado.web.Application(self.gateway.routes())

    def subscribers(self) -> int:
        return self.gateway.fanout.subscribers("feed")

    async def publish(self, payload: dict) -> None:
        await self.gateway.publish(self.topic, payload)


class BareHandler(tornado.websocket.WebSocketHandler):
    """Bare Tornado: echo does json.loads/json.dumps; fan-out members say hello once registered."""

    def initialize(self, members: set) -> None:
        self.members = members

    def check_origin(self, origin: str) -> bool:
        return True

    def open(self) -> None:
        self.set_nodelay(True)  # what any latency-minded Tornado server does; the gateway does it too
        if self.get_argument("fanout", None):
            self.members.add(self)
            self.write_message('{"hello":true}')

    def on_message(self, message: str | bytes) -> None:
        request = json.loads(message)
        data = request["data"]
        reply = {"id": 1, **data, "total": data["quantity"] * data["price"]}
        self.write_message(json.dumps({"request_id": request["request_id"], "data": reply}, ensure_ascii=False,
                                      separators=(",", ":")))

    def on_close(self) -> None:
        self.members.discard(self)


class TornadoServer:
    """Bare Tornado: one ``write_message`` per handler per message."""

    def __init__(self) -> None:
        self.members: set[BareHandler] = set()
        self.app = tornado.web.Application([("/ws", BareHandler, {"members": self.members})])

    def subscribers(self) -> int:
        return len(self.members)

    async def publish(self, payload: dict) -> None:
        text = json.dumps({"topic": "feed", "data": payload}, ensure_ascii=False, separators=(",", ":"))
        for handler in list(self.members):
            handler.write_message(text)


class SocketIOServer:
    """python-socketio's asyncio server on aiohttp, broadcasting one event to every client."""

    def __init__(self) -> None:
        import socketio
        from aiohttp import web

        self.sio = socketio.AsyncServer(async_mode="aiohttp", cors_allowed_origins="*")
        self.app = web.Application()
        self.sio.attach(self.app)
        self.count = 0

        @self.sio.event
        async def connect(sid, environ):
            self.count += 1

        @self.sio.event
        async def disconnect(sid, *args):
            self.count -= 1

    def subscribers(self) -> int:
        return self.count

    async def publish(self, payload: dict) -> None:
        await self.sio.emit("feed", payload)
