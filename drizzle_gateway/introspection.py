"""The ``__schema__`` document: the gateway's whole contract as JSON Schema.

apispec's MarshmallowPlugin turns marshmallow schemas into JSON Schema
(OpenAPI 3.1 flavour, which is JSON Schema 2020-12); named schemas land in
``components.schemas`` and are referenced with ``$ref`` from actions and
topics, as in an OpenAPI document.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from marshmallow import Schema

from .protocol import PROTOCOL_VERSION
from .resources import Action, Resource
from .topics import Topic


class _Describer:
    """Collects schemas into one apispec document while describing the contract."""

    def __init__(self, title: str) -> None:
        self.plugin = MarshmallowPlugin()
        self.spec = APISpec(title=title, version="1", openapi_version="3.1.0", plugins=[self.plugin])

    def schema(self, schema: Schema | None) -> dict | None:
        if schema is None:
            return None
        return self.plugin.resolver.resolve_schema_dict(schema)

    def action(self, act: Action) -> dict:
        return {
            "name": act.name,
            "description": act.doc,
            "input": self.schema(act.input),
            "output": self.schema(act.output.schema if act.output else None),
        }

    def resource(self, resource: type[Resource]) -> dict:
        return {
            "name": resource.name,
            "description": (resource.__doc__ or "").strip(),
            "actions": [self.action(act) for _, act in sorted(resource.actions.items())],
        }

    def topic(self, topic: Topic) -> dict:
        return {
            "name": topic.pattern,
            "params": list(topic.params),
            "description": topic.description,
            "payload": self.schema(topic.schema),
            "client_subscribe": topic.client_subscribe,
            "client_publish": topic.client_publish,
        }

    def components(self) -> dict:
        return {"schemas": self.spec.to_dict().get("components", {}).get("schemas", {})}


def describe(
    title: str,
    resources: Iterable[type[Resource]],
    topics: Iterable[Topic],
    builtins: type[Resource],
) -> dict[str, Any]:
    """The ``__schema__`` reply for a gateway with these resources and topics."""
    describer = _Describer(title)
    return {
        "protocol": PROTOCOL_VERSION,
        "title": title,
        "resources": [describer.resource(r) for r in resources],
        "builtins": [describer.action(act) for _, act in sorted(builtins.actions.items())],
        "topics": [describer.topic(t) for t in topics],
        "components": describer.components(),
    }
