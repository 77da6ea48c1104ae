"""Permission hooks: ``fn(user, params)``, plain or async, truthy to allow."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from ..wire.errors import ActionError, ErrorCode

Permission = Callable[[Any, dict], Any]
"""``fn(user, params)`` returning (or resolving to) a truthy value to allow."""


async def allows(permission: Permission | None, user: Any, params: dict) -> bool:
    """Whether ``permission`` allows ``user`` with ``params``; no permission allows."""
    if permission is None:
        return True
    answer = permission(user, params)
    if inspect.isawaitable(answer):
        answer = await answer
    return bool(answer)


async def require(permission: Permission | None, user: Any, params: dict, what: str) -> None:
    """Raise `ActionError` FORBIDDEN ("not allowed to <what>") unless ``permission`` allows."""
    if not await allows(permission, user, params):
        raise ActionError(ErrorCode.FORBIDDEN, f"not allowed to {what}")
