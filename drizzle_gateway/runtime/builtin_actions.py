"""The built-in actions every gateway answers, requested without a resource."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from marshmallow import Schema, ValidationError, fields, validate

from ..contract.permissions import require
from ..contract.resources import Resource, action
from ..schema.publication import payload_of
from ..wire.errors import ActionError, ErrorCode
from ..wire.history import Position
from ..wire.idempotency import KEY_PATTERN, KEY_RULE, valid_key
from .presence import Attendance

NO_PRESENCE = "this topic has no presence"

if TYPE_CHECKING:
    from ..contract.topics import Topic
    from .hub import Registry
    from .session import Session


class PositionSchema(Schema):
    epoch = fields.Str(required=True, metadata={"description": "the channel's epoch, as a reply or event gave it"})
    offset = fields.Int(required=True, validate=validate.Range(min=0),
                        metadata={"description": "the offset of the last event received"})


class SubscribeInput(Schema):
    topic = fields.Str(required=True, metadata={"description": "a concrete channel, e.g. chat.lobby"})
    since = fields.Nested(PositionSchema, load_default=None,
                          metadata={"description": "replay the events after this position first (topics with history)"})
    presence = fields.Dict(load_default=None, metadata={
        "description": "topics with client_presence: this subscription's presence entry (checked against the "
                       "topic's member schema)"})
    join_leave = fields.Bool(load_default=False, metadata={
        "description": "topics with presence: also receive the channel's member joins and leaves"})
    member_fields = fields.List(fields.Str(), load_default=None, metadata={
        "description": "with join_leave: the member fields each join and leave carries"})
    # The wire key "fields": marshmallow's metaclass takes declared fields off the class, so this never
    # replaces Schema.fields, but its types cannot say so.
    fields = fields.List(fields.Str(), load_default=None,  # type: ignore[assignment]
                         metadata={"description": "fields each event carries"})


class SubscribeReply(Schema):
    topic = fields.Str()
    epoch = fields.Str(metadata={"description": "topics with history: the channel's epoch"})
    offset = fields.Int(metadata={"description": "topics with history: the offset of the last event before the "
                                                 "first live one"})
    recovered = fields.Bool(metadata={"description": "with since: whether every missed event was replayed "
                                                     "(always false on topics without history)"})


class HistoryInput(Schema):
    topic = fields.Str(required=True, metadata={"description": "a concrete channel of a topic with history"})
    since = fields.Nested(PositionSchema, load_default=None,
                          metadata={"description": "only the events after this position"})
    limit = fields.Int(load_default=None, validate=validate.Range(min=1),
                       metadata={"description": "at most this many events (the first after since, else the last)"})
    fields = fields.List(fields.Str(), load_default=None,  # type: ignore[assignment]  # as in SubscribeInput
                         metadata={"description": "fields each event carries"})


class LoggedEvent(Schema):
    offset = fields.Int()
    data = fields.Raw()


class HistoryReply(Schema):
    topic = fields.Str()
    epoch = fields.Str()
    offset = fields.Int(metadata={"description": "the channel's latest offset"})
    events = fields.List(fields.Nested(LoggedEvent))
    recovered = fields.Bool(metadata={"description": "with since: whether no event after it is missing"})


class PresenceInput(Schema):
    topic = fields.Str(required=True, metadata={"description": "a concrete channel of a topic with presence"})
    fields = fields.List(fields.Str(), load_default=None,  # type: ignore[assignment]  # as in SubscribeInput
                         metadata={"description": "the member fields each entry carries"})


class MemberEntry(Schema):
    key = fields.Str(metadata={"description": "the member's identity: its presence key field, as a string"})
    connections = fields.Int(metadata={"description": "how many connections of the member subscribe, over "
                                                      "every process"})
    member = fields.Raw(metadata={"description": "its presence entry (the topic's member schema)"})


class PresenceReply(Schema):
    topic = fields.Str()
    members = fields.List(fields.Nested(MemberEntry))


class UnsubscribeInput(Schema):
    topic = fields.Str(required=True)


def _whole_key(key: str) -> None:
    """What ``Regexp`` lets through but is no key (a final newline)."""
    if KEY_PATTERN.match(key) is not None and not valid_key(key):
        raise ValidationError(f"must be {KEY_RULE}")


class PublishInput(Schema):
    topic = fields.Str(required=True)
    payload = fields.Raw(required=True, metadata={"description": "checked against the topic's schema"})
    idempotency_key = fields.Str(
        load_default=None, validate=[validate.Regexp(KEY_PATTERN, error=f"must be {KEY_RULE}"), _whole_key],
        metadata={"description": f"{KEY_RULE}: a repeat of this key on the topic within the gateway's "
                                 "idempotency window is acknowledged (duplicate: true) and delivered to nobody"})


class PublishReply(Schema):
    topic = fields.Str()
    epoch = fields.Str(metadata={"description": "topics with history, with an idempotency_key: the channel's epoch, "
                                                "when the event's position was known in time"})
    offset = fields.Int(metadata={"description": "topics with history, with an idempotency_key: the event's offset "
                                                 "(the original's for a duplicate), when known in time"})
    duplicate = fields.Bool(metadata={"description": "with an idempotency_key: true when an earlier publish carried "
                                                     "it, so this one reached nobody"})


class ChannelReply(Schema):
    topic = fields.Str()


class RequestId(fields.Field):  # type: ignore[type-arg]  # generic on marshmallow 4 only
    """A request's id, as drizzle.v1 takes it: a string or an integer."""

    json_schema = {"type": ["string", "integer"]}  # read by __schema__'s description of custom fields

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool)):
            return value
        raise ValidationError("Not a string or an integer.")


class CancelInput(Schema):
    request_id = RequestId(required=True, metadata={"description": "the request_id of a running stream"})


class CancelReply(Schema):
    request_id = RequestId()
    cancelled = fields.Bool(metadata={"description": "whether a stream of that request_id was running "
                                                    "(its end frame came before this reply)"})


class AuthInput(Schema):
    token = fields.Str(required=True, metadata={"description": "credentials for the gateway's authenticate hook"})


class AuthReply(Schema):
    authenticated = fields.Bool()
    expires_at = fields.Float(metadata={"description": "identities that expire: when, in unix seconds; refresh "
                                                       "before then by sending __auth__ again"})
    expires_in = fields.Float(metadata={"description": "identities that expire: seconds left, as the server "
                                                       "counts them (schedule refreshes on this, not on your clock)"})


class BuiltinActions(Resource):
    """Actions of the gateway itself: introspection, subscriptions, publishing."""

    name = "__gateway__"
    session: Session
    gateway: Registry

    @action(name="__ping__")
    def ping(self, data: Any) -> str:
        """Answer "pong"; clients use it as a heartbeat."""
        return "pong"

    @action(name="__schema__")
    async def schema(self, data: Any) -> dict[str, Any]:
        """The whole contract: resources, actions, topics, as JSON Schema."""
        return await self.gateway.schema_for(self.user)

    @action(AuthInput, AuthReply, name="__auth__")
    async def auth(self, data: dict[str, Any]) -> dict[str, Any]:
        """Authenticate this connection with a token (for clients that cannot set headers).

        Sent again on an authenticated connection, it refreshes the
        identity: the token must name the same user (FORBIDDEN otherwise,
        and the connection keeps its identity). When the identity expires
        the reply says when (``expires_at``, ``expires_in``); a connection
        not refreshed by then is closed with 4003.
        """
        identity = await self.session.authenticate(data["token"])
        reply: dict[str, Any] = {"authenticated": True}
        deadline, remaining = identity.deadline, identity.remaining()
        if deadline is not None and remaining is not None:
            reply.update(expires_at=deadline, expires_in=round(max(0.0, remaining), 3))
        return reply

    async def _may_subscribe(self, channel: str) -> tuple[Topic, dict[str, str]]:
        """The topic of ``channel`` and its params, once this user may subscribe to it (FORBIDDEN otherwise)."""
        topic, params = self.gateway.find_topic(channel)
        if not topic.client_subscribe:
            raise ActionError(ErrorCode.FORBIDDEN, f"clients may not subscribe to {topic.pattern!r}")
        await require(topic.can_subscribe, self.user, params, f"subscribe to {channel!r}")
        return topic, params

    async def _attendance(self, topic: Topic, params: dict[str, str], data: dict[str, Any]) -> Attendance | None:
        """What a subscription asks of the channel's presence (INVALID_DATA on a topic without it)."""
        declared = topic.presence
        if declared is None:
            asked = [name for name in ("presence", "member_fields") if data[name] is not None]
            if data["join_leave"]:
                asked.append("join_leave")
            if asked:
                raise ActionError(ErrorCode.INVALID_DATA, f"topic {topic.pattern!r} has no presence",
                                  {name: [NO_PRESENCE] for name in asked})
            return None
        client = declared.load_client(data["presence"])
        selection = declared.select(data["member_fields"]) if data["member_fields"] is not None else None
        entry = await declared.entry(self.user, params, client, self.session.hub.limits.max_member_bytes)
        return Attendance(entry, data["join_leave"], selection)

    @action(SubscribeInput, SubscribeReply, name="__subscribe__")
    async def subscribe_channel(self, data: dict[str, Any]) -> dict[str, Any]:
        """Receive the topic's events; ``fields`` selects what each event carries.

        On topics with history the reply carries the channel's ``epoch`` and
        ``offset``; with ``since`` the events missed after it come first and
        ``recovered`` says whether all of them could be. On topics without
        history ``since`` replays nothing and the reply says ``recovered: false``.
        """
        async with self.session.in_order(data["topic"]):
            topic, params = await self._may_subscribe(data["topic"])
            attendance = await self._attendance(topic, params, data)
            joined = await self.session.join(data["topic"], data["fields"], _position(data["since"]), attendance)
        reply: dict[str, Any] = {"topic": data["topic"]}
        if joined is not None:
            if joined.position is not None:
                reply.update(epoch=joined.position.epoch, offset=joined.position.offset)
            if joined.recovered is not None:
                reply["recovered"] = joined.recovered
        elif data["since"] is not None:  # a topic without history cannot replay: the client must know it was not
            reply["recovered"] = False
        return reply

    @action(HistoryInput, HistoryReply, name="__history__")
    async def history(self, data: dict[str, Any]) -> dict[str, Any]:
        """The retained events of a topic with history; the same permissions as subscribing."""
        topic, _ = await self._may_subscribe(data["topic"])
        selection = topic.select(data["fields"])
        since = _position(data["since"])
        page = await self.gateway.history(data["topic"], since, data["limit"])
        reply: dict[str, Any] = {
            "topic": data["topic"], "epoch": page.position.epoch, "offset": page.position.offset,
            "events": [{"offset": logged.offset, "data": payload_of(logged.data, selection)} for logged in page.events],
        }
        if since is not None:
            reply["recovered"] = page.complete
        return reply

    @action(PresenceInput, PresenceReply, name="__presence__")
    async def presence(self, data: dict[str, Any]) -> dict[str, Any]:
        """The members of a channel of a topic with presence, one entry each; the same permissions as subscribing."""
        topic, _ = await self._may_subscribe(data["topic"])
        if topic.presence is None:
            raise ActionError(ErrorCode.INVALID_DATA, f"topic {topic.pattern!r} has no presence",
                              {"topic": [NO_PRESENCE]})
        selection = topic.presence.select(data["fields"])
        members = await self.session.hub.presence.members(data["topic"])
        return {"topic": data["topic"], "members": [
            {"key": member.key, "connections": member.connections, "member": selection.cut(member.data)}
            for member in members]}

    @action(UnsubscribeInput, ChannelReply, name="__unsubscribe__")
    async def unsubscribe_channel(self, data: dict[str, Any]) -> dict[str, Any]:
        """Stop receiving the topic's events."""
        async with self.session.in_order(data["topic"]):
            self.gateway.find_topic(data["topic"])
            await self.session.unsubscribe(data["topic"])
        return {"topic": data["topic"]}

    @action(PublishInput, PublishReply, name="__publish__")
    async def publish_channel(self, data: dict[str, Any]) -> dict[str, Any]:
        """Publish a payload to a topic declared with ``client_publish=True``.

        With an ``idempotency_key``, a repeat within the window is answered
        ``duplicate: true`` (with the original's ``epoch`` and ``offset`` on
        topics with history, when known) and delivered to nobody.
        """
        topic, params = self.gateway.find_topic(data["topic"])
        if not topic.client_publish:
            raise ActionError(ErrorCode.FORBIDDEN, f"clients may not publish to {topic.pattern!r}")
        await require(topic.can_publish, self.user, params, f"publish to {data['topic']!r}")
        try:
            payload = topic.accept(data["payload"])
        except ValidationError as exc:
            raise ActionError(ErrorCode.INVALID_DATA, "payload does not match the topic's schema",
                              {"payload": exc.messages}) from None
        key = data["idempotency_key"]
        receipt = await self.gateway.publish(data["topic"], payload, idempotency_key=key)
        reply: dict[str, Any] = {"topic": data["topic"]}
        if key is not None:
            if receipt.position is not None:
                reply.update(epoch=receipt.position.epoch, offset=receipt.position.offset)
            reply["duplicate"] = receipt.duplicate
        return reply

    @action(CancelInput, CancelReply, name="__cancel__")
    async def cancel(self, data: dict[str, Any]) -> dict[str, Any]:
        """Stop a streaming reply of this connection; its generator is closed and its end frame sent first."""
        cancelled = await self.session.streams.cancel(data["request_id"])
        return {"request_id": data["request_id"], "cancelled": cancelled}


def _position(since: dict[str, Any] | None) -> Position | None:
    return Position(since["epoch"], since["offset"]) if since is not None else None
