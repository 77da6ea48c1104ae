"""What the benchmarks serve: two realistic actions and typed topics, plus the bare baselines.

Each ``make_*`` function returns an object with ``app`` (something to listen with)
and ``publish(payload)`` (one fan-out of one message), so the publisher loop in
`bench.server` drives the gateway, bare Tornado and python-socketio the same way.
"""

from __future__ import annotations

import json
from typing import Any

import tornado.web
import tornado.websocket
from marshmallow import Schema, fields, validate

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


class PostInput(Schema):
    title = fields.Str(required=True, validate=validate.Length(min=1, max=200))
    priority = fields.Int(required=True)


class Author(Schema):
    name = fields.Str()
    id = fields.Int()


class Post(Schema):
    id = fields.Int()
    title = fields.Str()
    priority = fields.Int()
    author = fields.Nested(Author)


class PostEvent(Schema):
    id = fields.Int(required=True)
    title = fields.Str(required=True)
    priority = fields.Int(required=True)


posted = Topic("posts", PostEvent)
"""The publish action's typed topic: nobody subscribes in the bench, but every publish is dumped and checked."""


class Note(Schema):
    """What a client publishes to a room: two fields, one with a validator."""

    seq = fields.Int(required=True)
    text = fields.Str(required=True, validate=validate.Length(min=1, max=200))


room = Topic("room.{name}", Note, client_publish=True)
"""The client-published fan-out's topic: clients publish to it with ``__publish__``."""
ROOM = "room.bench"

AUTHOR = {"name": "Ada", "id": 42}


class Orders(Resource):
    """The request/response scenario's action: 4 fields loaded, 6 dumped."""

    name = "orders"

    @action(input=OrderInput, output=Order)
    async def create(self, data: dict) -> dict:
        """Price an order."""
        return {"id": 1, **data, "total": data["quantity"] * data["price"]}


class Posts(Resource):
    """The second request/response action: 2 fields loaded (one validator), a typed publish, 4 dumped (one nested)."""

    name = "posts"

    @action(input=PostInput, output=Post, name="publish")
    async def publish_post(self, data: dict) -> dict:  # not ``publish``: that is `Resource.publish`
        """Post a note and announce it on ``posts``."""
        post = {"id": 7, **data, "author": AUTHOR}
        await self.publish(posted, post)
        return post


TEXT = "Grüße — the quick brown fox jumps over the lazy dog"


def tick(seq: int, ts: float, text: str = TEXT) -> dict[str, Any]:
    """A fan-out payload: ~150 bytes as an event frame with the default ``text``."""
    return {"seq": seq, "ts": ts, "user": "user-0042", "room": "lobby", "text": text, "score": 12.5}


def padded_text(frame_bytes: int) -> str:
    """A ``text`` that makes a tick's event frame about ``frame_bytes`` long."""
    size = max(len(TEXT.encode()), frame_bytes - 150 + len(TEXT.encode()))
    repeated = (TEXT + " ") * (size // len(TEXT.encode()) + 1)
    return repeated.encode()[:size].decode(errors="ignore")


def note_publish(request_id: int, seq: int) -> dict[str, Any]:
    """One ``__publish__`` frame of the client-published fan-out: note ``seq`` to `ROOM`."""
    return {"request_id": request_id, "action": "__publish__",
            "data": {"topic": ROOM, "payload": {"seq": seq, "text": "the quick brown fox jumps over the lazy dog"}}}


def order_request(request_id: int) -> dict[str, Any]:
    """One request/response frame for the ``orders.create`` action."""
    return {"request_id": request_id, "resource": "orders", "action": "create",
            "data": {"sku": "SKU-123", "quantity": 3, "price": 9.5, "note": "leave at the door"}}


def post_request(request_id: int) -> dict[str, Any]:
    """One request/response frame for the ``posts.publish`` action."""
    return {"request_id": request_id, "resource": "posts", "action": "publish",
            "data": {"title": "Deploy the gateway on Friday", "priority": 2}}


REQUESTS = {
    "orders.create": (order_request, lambda data: data.get("total") == 28.5),
    "posts.publish": (post_request, lambda data: data.get("author") == AUTHOR and data.get("priority") == 2),
}
"""The request/response scenario's actions: the frame for a request id, and what a right reply's ``data`` is."""


class GatewayServer:
    """The gateway under test: default `Limits`, except the per-connection rate limit.

    ``history`` declares the ``feed`` topic with that much history (events then carry offsets).

    A load generator sends thousands of requests (or ``__publish__`` frames) a
    second on one connection, which the default rate limit (100 frames/s, a
    burst of 200) is there to refuse: ``Limits(rate=None)``. Everything else
    (``max_in_flight``, ``cpu_share``, the send queue, the deadlines) is the default.
    """

    def __init__(self, history: int | None = None, **gateway_options: Any) -> None:
        gateway_options.setdefault("limits", Limits(rate=None))
        self.topic = Topic("feed", Tick, history=history) if history else feed
        self.gateway = Gateway([Orders, Posts], [self.topic, posted, room], **gateway_options)
        self.app = tornado.web.Application(self.gateway.routes())

    def subscribers(self) -> int:
        return self.gateway.hub.fanout.subscribers("feed")

    async def publish(self, payload: dict) -> None:
        await self.gateway.publish(self.topic, payload)


def served() -> Gateway:
    """The bench's gateway for ``drizzle-gateway serve bench.app:served`` (the workers shape)."""
    return GatewayServer().gateway


class BareHandler(tornado.websocket.WebSocketHandler):
    """Bare Tornado: echo does json.loads/json.dumps; fan-out members say hello once registered.

    The echo replies with the same ``data`` the gateway's action returns (no validation, no publish),
    so both send the same bytes. A ``__publish__`` frame goes to every member as an event, unchecked.
    """

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
        if request.get("action") == "__publish__":  # a client's publish: one frame to every member
            text = json.dumps({"topic": data["topic"], "data": data["payload"]}, ensure_ascii=False,
                              separators=(",", ":"))
            for member in list(self.members):
                member.write_message(text)
            reply = {"topic": data["topic"]}
        elif request.get("resource") == "posts":
            reply = {"id": 7, **data, "author": AUTHOR}
        else:
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
