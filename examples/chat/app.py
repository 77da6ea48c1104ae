"""A chat: rooms are typed, parameterised topics ``chat.{room}``.

Run it with ``drizzle-gateway serve examples.chat.app:gateway``.
"""

from __future__ import annotations

from collections import deque
from datetime import UTC, datetime

from marshmallow import Schema, fields, validate

from drizzle_gateway import Gateway, Resource, Topic, action

HISTORY_LENGTH = 50


class ChatMessage(Schema):
    author = fields.Str(required=True, validate=validate.Length(min=1, max=40))
    text = fields.Str(required=True, validate=validate.Length(min=1, max=500))
    sent_at = fields.DateTime(load_default=lambda: datetime.now(UTC))


class RoomRef(Schema):
    room = fields.Str(required=True, validate=validate.Regexp(r"^[A-Za-z0-9_-]{1,40}$"))


class NewMessage(RoomRef):
    author = fields.Str(required=True, validate=validate.Length(min=1, max=40))
    text = fields.Str(required=True, validate=validate.Length(min=1, max=500))


chat = Topic("chat.{room}", ChatMessage, client_publish=True, description="messages of one room")


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
        await self.publish(chat, ChatMessage().dump(message), room=data["room"])
        return message

    def _history(self, room: str) -> deque:
        return self.gateway.state.setdefault("history", {}).setdefault(room, deque(maxlen=HISTORY_LENGTH))


gateway = Gateway(resources=[Rooms], topics=[chat], title="chat example")
