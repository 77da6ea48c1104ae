"""A chat: rooms are typed, parameterised topics ``chat.{room}``.

Run it with ``drizzle-gateway serve examples.chat.app:gateway`` and open
http://127.0.0.1:8888/ in two browser windows. The page (index.html, next
to this file) uses drizzle.js: it posts through ``rooms.say``, which keeps
the room's history and publishes to ``chat.{room}``. The topic has
presence: each page subscribes with its name as its entry (a `ChatMember`,
the member's key), and shows who is in the room, kept up to date by the
joins and leaves. The chat does not authenticate, so a name is whatever a
page says it is; a gateway with users would give ``presence_of`` instead.
"""

from __future__ import annotations

from collections import deque
from datetime import UTC, datetime
from pathlib import Path

import tornado.web
from marshmallow import Schema, fields, validate

from drizzle_gateway import Gateway, Resource, Topic, action

HISTORY_LENGTH = 50
PAGE_DIR = Path(__file__).parent


class ChatMessage(Schema):
    author = fields.Str(required=True, validate=validate.Length(min=1, max=40))
    text = fields.Str(required=True, validate=validate.Length(min=1, max=500))
    sent_at = fields.DateTime(load_default=lambda: datetime.now(UTC))


class RoomRef(Schema):
    room = fields.Str(required=True, validate=validate.Regexp(r"^[A-Za-z0-9_-]{1,40}$"))


class NewMessage(RoomRef):
    author = fields.Str(required=True, validate=validate.Length(min=1, max=40))
    text = fields.Str(required=True, validate=validate.Length(min=1, max=500))


class ChatMember(Schema):
    name = fields.Str(required=True, validate=validate.Length(min=1, max=40),
                      metadata={"description": "who is in the room (one member per name, however many tabs)"})


chat = Topic("chat.{room}", ChatMessage, client_publish=True, description="messages of one room",
             presence=ChatMember, client_presence=True, presence_key="name")


class Rooms(Resource):
    """Chat rooms and their recent history."""

    name = "rooms"

    @action(input=RoomRef, output=ChatMessage(many=True))
    def history(self, data: dict) -> list[dict]:
        """The last messages of a room, oldest first."""
        return list(self._history(data["room"]))

    @action(input=NewMessage, output=ChatMessage)
    async def say(self, data: dict) -> dict:
        """Post a message to a room: kept in its history and published to ``chat.{room}``."""
        message = {"author": data["author"], "text": data["text"], "sent_at": datetime.now(UTC)}
        self._history(data["room"]).append(message)
        await self.publish(chat, message, room=data["room"])
        return message

    def _history(self, room: str) -> deque:
        return self.gateway.state.setdefault("history", {}).setdefault(room, deque(maxlen=HISTORY_LENGTH))


def make_gateway() -> Gateway:
    """A fresh chat gateway serving its page at ``/``."""
    page = (r"/()", tornado.web.StaticFileHandler, {"path": str(PAGE_DIR), "default_filename": "index.html"})
    return Gateway(resources=[Rooms], topics=[chat], title="chat example", extra_routes=[page])


gateway = make_gateway()
