"""The Tornado Drizzle wire dialect, as a drizzle_gateway `Dialect`.

Requests are ``{"resource", "action", "request_id", "data"?}`` checked by
the seed's JSON Schema; replies are ``{"data", "request_id"}``; errors are
``{"error", "code", "request_id"}``; events are the published object itself.
"""

from __future__ import annotations

from typing import Any

from jsonschema import Draft4Validator
from jsonschema.exceptions import ValidationError, best_match

from drizzle_gateway.wire.dialect import Dialect, InvalidFrame, Request, RequestId, decode_request, encode
from drizzle_gateway.wire.errors import ActionError, ErrorCode

LEGACY_PROTOCOL = "tornado_drizzle"

NOT_JSON_TEXT = "Expected Json encodable string"
UNKNOWN_ERROR_TEXT = "Unknown error"

REQUEST_SCHEMA: dict[str, Any] = {
    "$schema": "http://json-schema.org/draft-04/schema#",
    "type": "object",
    "required": ["resource", "action", "request_id"],
    "properties": {
        "request_id": {"oneOf": [{"type": "string"}, {"type": "number"}]},
        "resource": {"type": "string"},
        "action": {"type": "string"},
        "data": {"type": "object"},
    },
}
"""The seed's request envelope (plus ``"type": "object"``, which the seed lacked)."""


def _usable_request_id(frame: Any) -> RequestId:
    """The frame's ``request_id`` if it is one the envelope allows, else None."""
    if not isinstance(frame, dict):
        return None
    request_id = frame.get("request_id")
    if isinstance(request_id, bool) or not isinstance(request_id, str | int | float):
        return None
    return request_id


def describe(error: ValidationError) -> str:
    """jsonschema's message, prefixed with the key it is about (``'resource': 100 is not ...``)."""
    if error.path:
        where = "".join(f"[{part!r}]" if i else repr(part) for i, part in enumerate(error.path))
        return f"{where}: {error.message}"
    return error.message


class LegacyProtocol(Dialect):
    """Tornado Drizzle's dialect: what its clients send and expect, byte for byte in meaning.

    The action is called with the whole request dict, so `parse` keeps it
    in ``Request.raw``; ``fields`` is not part of this dialect and is ignored.
    """

    name = LEGACY_PROTOCOL

    def __init__(self) -> None:
        self._validator = Draft4Validator(REQUEST_SCHEMA)

    def parse(self, message: str | bytes) -> Request:
        """Turn one frame into a `Request`, or raise `InvalidFrame` with the seed's wording."""
        try:
            frame = decode_request(message)
        except (ValueError, RecursionError):
            raise InvalidFrame(NOT_JSON_TEXT) from None
        error = best_match(self._validator.iter_errors(frame))
        if error is not None:
            raise InvalidFrame(describe(error), _usable_request_id(frame))
        return Request(frame["request_id"], frame["action"], frame["resource"], frame.get("data"), None, frame)

    def reply(self, request_id: RequestId, data: Any) -> str:
        """``{"data": ..., "request_id": ...}``."""
        return encode({"data": data, "request_id": request_id})

    def error(self, request_id: RequestId, error: ActionError) -> str:
        """``{"error": ..., "code": ..., "request_id": ...}``; internal errors say only "Unknown error"."""
        text = UNKNOWN_ERROR_TEXT if error.code == ErrorCode.INTERNAL_ERROR else error.message
        return encode({"error": text, "code": error.code, "request_id": request_id})

    def event(self, topic: str, data: Any, offset: int | None = None, epoch: str | None = None) -> str:
        """The published object itself, with no envelope (so none of a channel's ``offset`` or ``epoch``)."""
        return encode(data)
