"""A ``__schema__`` document trimmed to what one user may use.

Used when a gateway is built with ``hide_forbidden=True``. Permissions are
asked "may this user use it at all?": an action's ``allow`` gets
``{"resource": ..., "action": ..., "data": None}``, a topic's hooks get
empty params. A hook that refuses, or raises, hides the entry.
Components no longer referenced are dropped too.

`builtins_only` is what a connection sees before it authenticates on a
gateway with ``authenticate`` (unless the gateway has ``public_schema``).
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from .permissions import Permission, allows

if TYPE_CHECKING:
    from .resources import Resource
    from .topics import Topic

logger = logging.getLogger("drizzle_gateway")

REF_PREFIX = "#/components/schemas/"


async def permits(permission: Permission | None, user: Any, params: dict) -> bool:
    """Whether ``permission(user, params)`` allows; no permission allows, an exception refuses."""
    try:
        return await allows(permission, user, params)
    except Exception as exc:
        logger.debug("permission %r raised %r while trimming __schema__", permission, exc)
        return False


async def _topic_visible(topic: Topic, user: Any) -> bool:
    ways = []
    if topic.client_subscribe:
        ways.append(topic.can_subscribe)
    if topic.client_publish:
        ways.append(topic.can_publish)
    if not ways:
        return True
    for permission in ways:
        if await permits(permission, user, {}):
            return True
    return False


def _refs(value: Any, found: set[str]) -> None:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            ref = item.get("$ref")
            if isinstance(ref, str) and ref.startswith(REF_PREFIX):
                found.add(ref[len(REF_PREFIX):])
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def _prune_components(document: dict) -> None:
    schemas: dict = document.get("components", {}).get("schemas", {})
    body = {key: value for key, value in document.items() if key != "components"}
    used: set[str] = set()
    _refs(body, used)
    pending = list(used)
    while pending:
        name = pending.pop()
        more: set[str] = set()
        _refs(schemas.get(name), more)
        for extra in more - used:
            used.add(extra)
            pending.append(extra)
    document["components"] = {"schemas": {name: schema for name, schema in schemas.items() if name in used}}


async def visible_schema(schema: dict, resources: Mapping[str, type[Resource]], topics: Iterable[Topic],
                         user: Any) -> dict:
    """``schema`` (a ``__schema__`` document of ``resources`` and ``topics``) without what ``user`` may not use."""
    document = copy.deepcopy(schema)
    visible = []
    for entry in document["resources"]:
        resource = resources[entry["name"]]
        actions = []
        for described in entry["actions"]:
            act = resource.get_action(described["name"])
            params = {"resource": resource.name, "action": described["name"], "data": None}
            if act is not None and await permits(act.allow, user, params):
                actions.append(described)
        if actions:
            visible.append({**entry, "actions": actions})
    document["resources"] = visible
    declared = {topic.pattern: topic for topic in topics}
    document["topics"] = [t for t in document["topics"] if await _topic_visible(declared[t["name"]], user)]
    _prune_components(document)
    return document


def builtins_only(document: dict) -> dict:
    """``document`` with no resources and no topics: the built-in actions and their components only."""
    trimmed = {**document, "resources": [], "topics": []}
    _prune_components(trimmed)
    return trimmed
