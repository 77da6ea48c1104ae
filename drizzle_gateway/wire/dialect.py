"""Wire protocol v1: frames in and out.

Pure functions and data only: no I/O and no Tornado. A `Dialect` is one
wire dialect; the gateway speaks ``drizzle.v1`` and the Tornado Drizzle
shim plugs in its own dialect without touching the dispatcher.
"""

from __future__ import annotations

import json
import re
from typing import Any, NamedTuple

from .codec import PARSER_DEPTH, TooDeep
from .codec import decode as decode  # re-exported: the JSON rule lives in codec
from .codec import decode_request as decode_request  # re-exported too
from .codec import encode as encode  # re-exported too
from .errors import ActionError, ErrorCode, bounded
from .presence import STALE

PROTOCOL_VERSION = "drizzle.v1"
SUBPROTOCOL = "drizzle.v1"

RequestId = str | int | float | None
"""A request's id as a dialect accepts it: drizzle.v1 takes strings and integers, Tornado Drizzle's any number."""


class Request(NamedTuple):
    """One request frame, checked for shape but not yet for meaning (``raw``: the frame as parsed)."""

    request_id: RequestId
    action: str
    resource: str | None = None
    data: Any = None
    fields: tuple[str, ...] | None = None
    raw: dict[str, Any] | None = None


class InvalidFrame(ActionError):
    """A frame that is not a well-formed request; keeps the id it had, if any."""

    def __init__(self, message: str, request_id: RequestId = None, details: Any = None):
        super().__init__(ErrorCode.VALIDATION_ERROR, message, details)
        self.request_id = request_id


class NestedTooDeep(InvalidFrame):
    """A frame nested deeper than the JSON parser reads; keeps the id its text starts with, if any."""

    def __init__(self, request_id: RequestId = None) -> None:
        super().__init__(f"frame is nested deeper than {PARSER_DEPTH} levels", request_id)


# A frame whose first key is request_id: its value, read without parsing the rest (which may be a nesting bomb).
_LEADING_REQUEST_ID = re.compile(
    r'\s*\{\s*"request_id"\s*:\s*(-?(?:0|[1-9][0-9]{0,18})|"(?:[^"\\\x00-\x1f]|\\.){0,256}")\s*[,}]')


def leading_request_id(message: str) -> RequestId:
    """The ``request_id`` a frame's text starts with (``{"request_id": 7, ...``), or None."""
    found = _LEADING_REQUEST_ID.match(message, 0, 600)
    if found is None:
        return None
    try:
        value = json.loads(found.group(1))
    except ValueError:
        return None
    return value if _is_request_id(value) else None


def _is_request_id(value: Any) -> bool:
    return isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool))


class Dialect:
    """The ``drizzle.v1`` dialect: envelopes with ``request_id``, ``data``, ``code``."""

    name = PROTOCOL_VERSION

    def parse(self, message: str | bytes) -> Request:
        """Turn one text frame into a `Request`, or raise `InvalidFrame`."""
        if isinstance(message, bytes):
            raise InvalidFrame("binary frames are not supported; send JSON text frames")
        try:
            frame = decode_request(message)
        except TooDeep:
            raise NestedTooDeep(leading_request_id(message)) from None
        except (ValueError, RecursionError):  # orjson.JSONDecodeError is a ValueError
            raise InvalidFrame("frame is not valid JSON") from None
        if not isinstance(frame, dict):
            raise InvalidFrame("frame must be a JSON object")
        request_id = frame.get("request_id")
        if not _is_request_id(request_id):
            raise InvalidFrame(
                "'request_id' is required and must be a string or an integer",
                request_id if _is_request_id(request_id) else None,
            )
        return self._envelope(frame, request_id)

    def _envelope(self, frame: dict[str, Any], request_id: RequestId) -> Request:
        action = frame.get("action")
        if not isinstance(action, str):
            raise InvalidFrame("'action' is required and must be a string", request_id)
        resource = frame.get("resource")
        if resource is not None and not isinstance(resource, str):
            raise InvalidFrame("'resource' must be a string", request_id)
        if resource is None and not action.startswith("__"):
            raise InvalidFrame("'resource' is required for actions that are not built in", request_id)
        data = frame.get("data")
        if data is not None and not isinstance(data, dict | list):  # a list is for an input declared many=True
            raise InvalidFrame("'data' must be a JSON object or array", request_id)
        fields = frame.get("fields")
        if fields is not None:
            if not isinstance(fields, list) or not all(isinstance(f, str) for f in fields):
                raise InvalidFrame("'fields' must be a list of strings", request_id)
            fields = tuple(fields)
        return Request(request_id, action, resource, data, fields, frame)

    def reply(self, request_id: RequestId, data: Any) -> str:
        """The frame answering a request that succeeded."""
        return encode({"request_id": request_id, "data": data})

    def item(self, request_id: RequestId, data: Any) -> str:
        """One item of a streaming reply: ``{"request_id": 7, "data": ..., "more": true}``."""
        return encode({"request_id": request_id, "data": data, "more": True})

    def end(self, request_id: RequestId) -> str:
        """The frame ending a streaming reply that ran out (or was cancelled): ``{"request_id": 7, "more": false}``."""
        return encode({"request_id": request_id, "more": False})

    def error(self, request_id: RequestId, error: ActionError) -> str:
        """The frame answering a request that failed, within the error frame's bounds (see `errors.bounded`).

        ``"truncated": true`` says the text or ``details`` were cut.
        """
        message, details, cut = bounded(error)
        frame: dict[str, Any] = {"request_id": request_id, "code": error.code, "error": message}
        if details is not None:
            frame["details"] = details
        if cut:
            frame["truncated"] = True
        return encode(frame)

    def event(self, topic: str, data: Any, offset: int | None = None, epoch: str | None = None) -> str:
        """The frame carrying one published message to a subscriber.

        On channels with history it carries its ``offset``, and ``epoch``
        when the channel's history was lost since the subscriber last heard.
        """
        if offset is None:
            return encode({"topic": topic, "data": data})
        if epoch is None:
            return encode({"topic": topic, "data": data, "offset": offset})
        return encode({"topic": topic, "data": data, "offset": offset, "epoch": epoch})

    def gap(self, topic: str, epoch: str, first: int, last: int) -> str:
        """The frame telling a subscriber that offsets ``first`` to ``last`` of ``epoch`` cannot be delivered."""
        return encode({"topic": topic, "epoch": epoch, "gap": {"from": first, "to": last}})

    def presence(self, topic: str, kind: str, key: str, member: Any) -> str:
        """The frame telling a subscriber that a member joined or left (``kind``: ``join`` or ``leave``).

        ``member`` is its presence entry, cut to the subscriber's ``member_fields``.
        """
        return encode({"topic": topic, "presence": kind, "key": key, "member": member})

    def presence_stale(self, topic: str) -> str:
        """The notice that join and leave events of ``topic`` were not sent (over the rate): list its members again."""
        return encode({"topic": topic, "presence": STALE})


class CloseCode:
    """Websocket close codes the gateway uses; docs/protocol.md says which to reconnect after."""

    NORMAL = 1000  # the client or server ended the session; do not reconnect
    GOING_AWAY = 1001  # server shutting down or restarting; reconnect (elsewhere)
    PROTOCOL_ERROR = 1002  # the client broke RFC 6455 (an unmasked frame); do not reconnect
    POLICY_VIOLATION = 1008  # control frames or fragments faster than the frame rate; do not reconnect
    MESSAGE_TOO_BIG = 1009  # a frame exceeded the size limit; do not resend it
    ABNORMAL = 1006  # the connection dropped without a close frame (network, dead peer); reconnect
    INTERNAL_ERROR = 1011  # the server failed; reconnect with backoff
    SERVICE_RESTART = 1012  # the server drained for a restart or deploy; reconnect (elsewhere) with jitter
    UNAUTHENTICATED = 4001  # no valid credentials in time; reconnect only with new credentials
    TOKEN_EXPIRED = 4003  # the connection's identity expired unrefreshed; reconnect only with a fresh token
    SLOW_CONSUMER = 4008  # the client fell behind: congested for send_timeout, or past the queue's cap; reconnect

    RECONNECT = frozenset({GOING_AWAY, ABNORMAL, INTERNAL_ERROR, SERVICE_RESTART, SLOW_CONSUMER})
    """Codes after which a client should reconnect (with backoff); after the others it should not."""
