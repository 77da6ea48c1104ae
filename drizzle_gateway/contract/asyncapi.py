"""The contract as an AsyncAPI 3.0 document, for tools outside the gateway.

Built from the ``__schema__`` document and nothing else: its
``components.schemas`` are copied as they are, and every message payload
refers to them with the same ``$ref`` (``#/components/schemas/Todo``), so
the two documents cannot drift apart.

The document describes the gateway (the application) on one websocket
server:

- every action, the built-in ones included, is a channel of its own (no
  address: all of them travel on the websocket) with a ``request``, a
  ``reply`` and an ``error`` message, and an operation the gateway
  ``receive``\\ s and answers with a reply (correlated by ``request_id``);
  a streaming action answers with ``item`` messages and an ``end`` message
  instead, and its operation says ``x-stream: true``;
- every topic is a channel whose address is the topic's name or pattern
  (``chat.{room}``, with its parameters) carrying ``event`` messages, and
  an operation the gateway ``send``\\ s.

AsyncAPI's default schema format is based on JSON Schema draft-07; the
components are 2020-12, which a draft-07 reader understands but for one
keyword: a ``Tuple``'s ``prefixItems`` is written the draft-07 way,
``items: [...]``, with what follows them as ``additionalItems``. And
AsyncAPI's ``discriminator`` is the name of the property (a
``OneOfSchema``'s type field), where OpenAPI's is an object with a
``mapping`` too. Those are changes of spelling, not a second reading of
marshmallow.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from ..wire.dialect import PROTOCOL_VERSION, SUBPROTOCOL
from ..wire.errors import ErrorCode

ASYNCAPI_VERSION = "3.0.0"

STABLE_ERROR_CODES: tuple[str, ...] = tuple(
    value for name, value in vars(ErrorCode).items() if not name.startswith("_") and isinstance(value, str))
"""The error codes of wire protocol v1 (an action may raise codes of its own)."""

_UNSAFE_ID = re.compile(r"[^A-Za-z0-9_.-]+")


def _request_id() -> dict[str, Any]:
    return {"type": ["string", "integer"], "description": "chosen by the client, echoed in the reply or error"}


def _fields() -> dict[str, Any]:
    return {"type": "array", "items": {"type": "string"},
            "description": "output fields to return, nested with dots (field selection)"}


def _id(text: str) -> str:
    """``text`` as an AsyncAPI component or channel key (letters, digits, ``_ . -``)."""
    return _UNSAFE_ID.sub("_", text.replace("{", "").replace("}", "")) or "_"


def _ref(*parts: str) -> dict[str, str]:
    return {"$ref": "#/" + "/".join(part.replace("~", "~0").replace("/", "~1") for part in parts)}


def _resolve(document: dict, node: Any) -> Any:
    """``node`` with one level of ``$ref`` into ``document`` followed."""
    if isinstance(node, dict) and isinstance(node.get("$ref"), str) and node["$ref"].startswith("#/"):
        target: Any = document
        for part in node["$ref"][2:].split("/"):
            target = target[part.replace("~1", "/").replace("~0", "~")]
        return target
    return node


def _any(description: str) -> dict[str, str]:
    return {"description": description}


class _Builder:
    """Collects channels, operations and messages while walking the ``__schema__`` document."""

    def __init__(self, schema: dict[str, Any]) -> None:
        self.schema = schema
        self.channels: dict[str, Any] = {}
        self.operations: dict[str, Any] = {}
        self.messages: dict[str, Any] = {"error": self._error_message()}

    @staticmethod
    def _error_message() -> dict[str, Any]:
        return {
            "name": "error",
            "title": "Error",
            "summary": "The request failed; the connection stays open.",
            "correlationId": {"location": "$message.payload#/request_id"},
            "payload": {
                "type": "object",
                "properties": {
                    "request_id": _request_id(),
                    "code": {"type": "string", "examples": list(STABLE_ERROR_CODES),
                             "description": "a stable code of the protocol, or an action's own (upper case)"},
                    "error": {"type": "string", "description": "human-readable text"},
                    "details": _any("what helps fix the request, e.g. marshmallow's messages"),
                    "truncated": {"const": True, "description": "the text or details were cut to the frame's bounds"},
                },
                "required": ["request_id", "code", "error"],
            },
        }

    def _data_required(self, input_schema: Any) -> bool:
        resolved = _resolve(self.schema, input_schema)
        return isinstance(resolved, dict) and (bool(resolved.get("required")) or "oneOf" in resolved)

    def action(self, resource: str | None, act: dict[str, Any]) -> None:
        name = act["name"]
        key = _id(f"{resource}.{name}" if resource else name)
        request_props: dict[str, Any] = {"request_id": _request_id()}
        required = ["request_id", "action"]
        if resource:
            request_props["resource"] = {"const": resource}
            required.insert(1, "resource")
        request_props["action"] = {"const": name}
        request_props["data"] = (copy.deepcopy(act["input"]) if act["input"] is not None
                                 else _any("passed to the action as it is (it has no input schema)"))
        if act["input"] is not None and self._data_required(act["input"]):
            required.append("data")
        if resource:
            request_props["fields"] = _fields()
        output = copy.deepcopy(act["output"]) if act["output"] is not None else _any("whatever the action returns")
        correlation = {"location": "$message.payload#/request_id"}
        self.messages[f"{key}.request"] = {
            "name": f"{key}.request",
            "title": f"{resource + '.' if resource else ''}{name} request",
            "summary": act["description"] or None,
            "correlationId": correlation,
            "payload": {"type": "object", "properties": request_props, "required": required},
        }
        title = f"{resource + '.' if resource else ''}{name}"
        answers = self._stream_messages(key, title, output) if act.get("stream") else {
            "reply": {"name": f"{key}.reply", "title": f"{title} reply", "correlationId": correlation,
                      "payload": {"type": "object", "properties": {"request_id": _request_id(), "data": output},
                                  "required": ["request_id", "data"]}}}
        for kind, message in answers.items():
            self.messages[f"{key}.{kind}"] = message
        self.channels[key] = {
            "address": None,
            "title": title,
            "description": "Requests and their replies travel on the gateway's websocket, matched by request_id.",
            "messages": {
                "request": _ref("components", "messages", f"{key}.request"),
                **{kind: _ref("components", "messages", f"{key}.{kind}") for kind in answers},
                "error": _ref("components", "messages", "error"),
            },
        }
        operation: dict[str, Any] = {
            "action": "receive",
            "channel": _ref("channels", key),
            "title": title,
            "messages": [_ref("channels", key, "messages", "request")],
            "reply": {"channel": _ref("channels", key),
                      "messages": [_ref("channels", key, "messages", kind) for kind in (*answers, "error")]},
        }
        if act["description"]:
            operation["description"] = act["description"]
        if act.get("stream"):
            operation["x-stream"] = True
        self.operations[key] = operation

    @staticmethod
    def _stream_messages(key: str, title: str, output: Any) -> dict[str, Any]:
        """A streaming action's answers: an item message per item, then the end message (or the error)."""
        correlation = {"location": "$message.payload#/request_id"}
        return {
            "item": {"name": f"{key}.item", "title": f"{title} item", "correlationId": correlation,
                     "summary": "One item of the streaming reply; more follow.",
                     "payload": {"type": "object",
                                 "properties": {"request_id": _request_id(), "data": output, "more": {"const": True}},
                                 "required": ["request_id", "data", "more"]}},
            "end": {"name": f"{key}.end", "title": f"{title} end", "correlationId": correlation,
                    "summary": "The streaming reply ended (ran out, or was cancelled with __cancel__).",
                    "payload": {"type": "object",
                                "properties": {"request_id": _request_id(), "more": {"const": False}},
                                "required": ["request_id", "more"]}},
        }

    def topic(self, topic: dict[str, Any]) -> None:
        key = _id("topic." + topic["name"])
        self.messages[f"{key}.event"] = {
            "name": f"{key}.event",
            "title": f"{topic['name']} event",
            "summary": topic["description"] or None,
            "payload": {
                "type": "object",
                "properties": {"topic": {"type": "string", "description": "the concrete channel, e.g. chat.lobby"},
                               "data": copy.deepcopy(topic["payload"]) if topic["payload"] is not None
                               else _any("the published payload")},
                "required": ["topic", "data"],
            },
        }
        messages = {"event": _ref("components", "messages", f"{key}.event")}
        presence = topic.get("presence")
        if presence is not None:
            self.messages[f"{key}.presence"] = _presence_message(key, topic["name"], presence)
            messages["presence"] = _ref("components", "messages", f"{key}.presence")
        channel: dict[str, Any] = {
            "address": topic["name"],
            "title": topic["name"],
            "messages": messages,
            "x-client-subscribe": topic["client_subscribe"],
            "x-client-publish": topic["client_publish"],
        }
        if topic["description"]:
            channel["description"] = topic["description"]
        if topic["params"]:
            channel["parameters"] = {param: {"description": f"the {param} part of the channel name"}
                                     for param in topic["params"]}
        self.channels[key] = channel
        self.operations[key] = {
            "action": "send",
            "channel": _ref("channels", key),
            "title": f"{topic['name']} events",
            "description": "Sent to connections subscribed with __subscribe__"
                           + (" (clients may publish with __publish__)." if topic["client_publish"] else "."),
            "messages": [_ref("channels", key, "messages", name) for name in messages],
        }


def _presence_message(key: str, name: str, presence: dict[str, Any]) -> dict[str, Any]:
    """The message of a member's join or leave (or a stale notice), sent to subscribers with ``join_leave``."""
    return {
        "name": f"{key}.presence",
        "title": f"{name} join or leave",
        "summary": f"a member (identified by its {presence['key']!r}) joined or left; \"stale\": list them again",
        "payload": {
            "type": "object",
            "properties": {
                "topic": {"type": "string", "description": "the concrete channel, e.g. chat.lobby"},
                "presence": {"type": "string", "enum": ["join", "leave", "stale"]},
                "key": {"type": "string", "description": f"the member's {presence['key']}, as a string"},
                "member": copy.deepcopy(presence["member"]),
            },
            "required": ["topic", "presence"],
        },
    }


def draft07(node: Any) -> Any:
    """``node`` (JSON Schema 2020-12) with tuples spelled as draft-07 spells them, discriminators as AsyncAPI does."""
    if isinstance(node, list):
        return [draft07(value) for value in node]
    if not isinstance(node, dict):
        return node
    converted = {key: draft07(value) for key, value in node.items()}
    if "prefixItems" in converted:
        converted["items"] = converted.pop("prefixItems")
        if "items" in node:
            converted["additionalItems"] = draft07(node["items"])
    if isinstance(node.get("discriminator"), dict) and "oneOf" in node:
        converted["discriminator"] = node["discriminator"]["propertyName"]
    return converted


def _without_none(node: Any) -> Any:
    if isinstance(node, dict):
        return {key: _without_none(value) for key, value in node.items() if value is not None or key == "address"}
    if isinstance(node, list):
        return [_without_none(value) for value in node]
    return node


def asyncapi_document(schema: dict[str, Any], *, host: str = "localhost:8888", path: str = "/ws") -> dict[str, Any]:
    """The AsyncAPI 3.0 document of the gateway whose ``__schema__`` document is ``schema``.

    ``host`` and ``path`` say where the websocket is served (the server's
    ``host`` and ``pathname``).
    """
    builder = _Builder(schema)
    for resource in schema["resources"]:
        for act in resource["actions"]:
            builder.action(resource["name"], act)
    for act in schema["builtins"]:
        builder.action(None, act)
    for topic in schema["topics"]:
        builder.topic(topic)
    document = {
        "asyncapi": ASYNCAPI_VERSION,
        "info": {
            "title": schema["title"],
            "version": schema["protocol"],
            "description": f"A drizzle_gateway ({PROTOCOL_VERSION}): resources and typed topics over one websocket.",
        },
        "defaultContentType": "application/json",
        "servers": {
            "gateway": {
                "host": host,
                "protocol": "ws",
                "pathname": path,
                "description": f"JSON text frames; websocket subprotocol {SUBPROTOCOL} (or none).",
            },
        },
        "channels": builder.channels,
        "operations": builder.operations,
        "components": {
            "schemas": draft07(schema["components"]["schemas"]),
            "messages": draft07(builder.messages),
        },
    }
    return _without_none(document)
