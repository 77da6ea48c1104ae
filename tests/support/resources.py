"""Resources and topics the tests add to the todo example's gateway."""

from __future__ import annotations

import asyncio

from marshmallow import Schema, fields, validate
from tornado import gen

from drizzle_gateway import ActionError, Resource, Topic, action


class Author(Schema):
    name = fields.Str(required=True)
    email = fields.Str()


class Message(Schema):
    author = fields.Nested(Author, required=True)
    text = fields.Str(required=True, validate=validate.Length(max=100))
    seq = fields.Int()


class Delay(Schema):
    seconds = fields.Float(required=True)
    tag = fields.Str(required=True)


chat = Topic("chat.{room}", Message, client_publish=True)
server_only = Topic("alerts", Message)
hidden = Topic("hidden", Message, client_subscribe=False)


class Lab(Resource):
    """Actions that exercise the gateway's edges."""

    name = "lab"
    not_an_action = "plain attribute"

    def helper(self, data):
        return "never reachable"

    def _private(self, data):
        return "never reachable"

    @action()
    def plain(self, data):
        """A plain function."""
        return {"kind": "plain", "data": data}

    @action()
    @gen.coroutine
    def legacy(self, data):
        """A @gen.coroutine action, as seed code writes them."""
        yield gen.moment
        return {"kind": "coroutine"}

    @action(input=Delay)
    async def sleep(self, data):
        """Sleep, then answer with the tag."""
        await asyncio.sleep(data["seconds"])
        return {"tag": data["tag"]}

    @action()
    async def bounded(self, data):
        """Use asyncio.timeout around a wait that outlasts it."""
        try:
            async with asyncio.timeout(0.05):
                await asyncio.sleep(2)
        except TimeoutError:
            return {"timed_out": True}
        return {"timed_out": False}

    @action()
    async def fail(self, data):
        """Raise an unexpected exception."""
        raise RuntimeError("secret database password leaked in this message")

    @action()
    async def refuse(self, data):
        """Raise an ActionError of its own."""
        raise ActionError("QUOTA_EXCEEDED", "too many todos", {"limit": 3})

    @action()
    async def unserializable(self, data):
        """Return something JSON cannot encode."""
        return {"value": object()}

    @action(output=Message)
    async def bad_output(self, data):
        """Return something the output schema cannot dump."""
        return {"author": {"name": "ada"}, "text": "x", "seq": "not a number"}

    @action()
    async def whoami(self, data):
        """Who is calling, and from which connection."""
        return {"user": self.user, "has_connection": self.connection is not None,
                "has_gateway": self.gateway is not None}

    @action()
    async def join(self, data):
        """Subscribe to chat.<room> server-side, then answer."""
        await self.subscribe(chat, room=data["room"])
        return {"joined": data["room"]}

    @action()
    async def announce(self, data):
        """Publish to a chat room from the server side."""
        await self.publish("chat.{room}", data["message"], room=data["room"])
        return {"sent": True}


class Napper(Resource):
    """An action that notes whether it finished or was cancelled (add it to a gateway to time out its naps)."""

    name = "napper"

    @action()
    async def nap(self, data):
        """Sleep ``seconds``."""
        state = self.gateway.state
        try:
            await asyncio.sleep(data["seconds"])
        except asyncio.CancelledError:
            state["cancelled"] = state.get("cancelled", 0) + 1
            raise
        state["finished"] = state.get("finished", 0) + 1
        return {"slept": data["seconds"]}

    @action()
    def stats(self, data):
        """How many naps finished and how many were cancelled."""
        return {"finished": self.gateway.state.get("finished", 0), "cancelled": self.gateway.state.get("cancelled", 0)}


TEST_RESOURCES = [Lab]
TEST_TOPICS = [chat, server_only, hidden]
