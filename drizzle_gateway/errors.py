"""Errors as data: every failure a client can see is an `ActionError`."""

from __future__ import annotations

from typing import Any


class ErrorCode:
    """The stable error codes of wire protocol v1."""

    VALIDATION_ERROR = "VALIDATION_ERROR"
    RESOURCE_NOT_FOUND = "RESOURCE_NOT_FOUND"
    ACTION_NOT_FOUND = "ACTION_NOT_FOUND"
    TOPIC_NOT_FOUND = "TOPIC_NOT_FOUND"
    INVALID_DATA = "INVALID_DATA"
    INVALID_FIELDS = "INVALID_FIELDS"
    FORBIDDEN = "FORBIDDEN"
    UNAUTHENTICATED = "UNAUTHENTICATED"
    RATE_LIMITED = "RATE_LIMITED"
    LIMIT_EXCEEDED = "LIMIT_EXCEEDED"
    TIMEOUT = "TIMEOUT"
    SHUTTING_DOWN = "SHUTTING_DOWN"
    UNAVAILABLE = "UNAVAILABLE"
    INTERNAL_ERROR = "INTERNAL_ERROR"


class ActionError(Exception):
    """An error the client receives as an error frame.

    Raise it from an action to answer with your own ``code``; ``details``
    is any JSON-encodable value that helps the client fix its request.
    """

    def __init__(self, code: str, message: str, details: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details

    def __repr__(self) -> str:
        return f"ActionError({self.code!r}, {self.message!r}, {self.details!r})"
