"""The built-in actions every gateway answers, requested without a resource."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields

from .errors import ActionError, ErrorCode
from .permissions import require
from .resources import Resource, action


class SubscribeInput(Schema):
    topic = fields.Str(required=True, metadata={"description": "a concrete channel, e.g. chat.lobby"})
    fields = fields.List(fields.Str(), load_default=None, metadata={"description": "fields each event carries"})


class UnsubscribeInput(Schema):
    topic = fields.Str(required=True)


class PublishInput(Schema):
    topic = fields.Str(required=True)
    payload = fields.Raw(required=True, metadata={"description": "checked against the topic's schema"})


class ChannelReply(Schema):
    topic = fields.Str()


class AuthInput(Schema):
    token = fields.Str(required=True, metadata={"description": "credentials for the gateway's authenticate hook"})


class AuthReply(Schema):
    authenticated = fields.Bool()


class BuiltinActions(Resource):
    """Actions of the gateway itself: introspection, subscriptions, publishing."""

    name = "__gateway__"

    @action(name="__ping__")
    def ping(self, data: Any) -> str:
        """Answer "pong"; clients use it as a heartbeat."""
        return "pong"

    @action(name="__schema__")
    async def schema(self, data: Any) -> dict:
        """The whole contract: resources, actions, topics, as JSON Schema."""
        return await self.gateway.schema_for(self.user)

    @action(AuthInput, AuthReply, name="__auth__")
    async def auth(self, data: dict) -> dict:
        """Authenticate this connection with a token (for clients that cannot set headers)."""
        await self.connection.authenticate(data["token"])
        return {"authenticated": True}

    @action(SubscribeInput, ChannelReply, name="__subscribe__")
    async def subscribe_channel(self, data: dict) -> dict:
        """Receive the topic's events; ``fields`` selects what each event carries."""
        topic, params = self.gateway.find_topic(data["topic"])
        if not topic.client_subscribe:
            raise ActionError(ErrorCode.FORBIDDEN, f"clients may not subscribe to {topic.pattern!r}")
        await require(topic.can_subscribe, self.user, params, f"subscribe to {data['topic']!r}")
        await self.connection.subscribe(data["topic"], data["fields"])
        return {"topic": data["topic"]}

    @action(UnsubscribeInput, ChannelReply, name="__unsubscribe__")
    async def unsubscribe_channel(self, data: dict) -> dict:
        """Stop receiving the topic's events."""
        self.gateway.find_topic(data["topic"])
        await self.connection.unsubscribe(data["topic"])
        return {"topic": data["topic"]}

    @action(PublishInput, ChannelReply, name="__publish__")
    async def publish_channel(self, data: dict) -> dict:
        """Publish a payload to a topic declared with ``client_publish=True``."""
        topic, params = self.gateway.find_topic(data["topic"])
        if not topic.client_publish:
            raise ActionError(ErrorCode.FORBIDDEN, f"clients may not publish to {topic.pattern!r}")
        await require(topic.can_publish, self.user, params, f"publish to {data['topic']!r}")
        try:
            await self.gateway.publish(data["topic"], topic.accept(data["payload"]))
        except ValidationError as exc:
            raise ActionError(ErrorCode.INVALID_DATA, "payload does not match the topic's schema",
                              {"payload": exc.messages}) from None
        return {"topic": data["topic"]}
