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


ERROR_TEXT_CHARS = 500
"""Most characters of an error frame's human text; longer texts are cut (they may quote what the client sent)."""

DETAIL_ENTRIES = 100
"""Most values (strings, numbers, objects and lists, over all levels) an error frame's ``details`` keeps."""

DETAIL_CHARS = 4000
"""Most characters of text (keys and strings, together) an error frame's ``details`` keeps."""

DETAIL_STRING_CHARS = 200
"""Most characters of any one key or string in ``details``."""

DETAIL_DEPTH = 32
"""Deepest nesting of ``details`` kept; deeper values are cut."""


def bounded(error: ActionError) -> tuple[str, Any, bool]:
    """The ``message`` and ``details`` of ``error`` as an error frame carries them, and whether either was cut.

    However many problems a request had, its error frame stays small:
    the text keeps `ERROR_TEXT_CHARS` characters, ``details`` the first
    `DETAIL_ENTRIES` entries and `DETAIL_CHARS` characters of text, in order.
    """
    message = error.message
    cut = len(message) > ERROR_TEXT_CHARS
    if cut:
        message = message[:ERROR_TEXT_CHARS] + "..."
    if error.details is None:
        return message, None, cut
    budget = _Budget(DETAIL_ENTRIES, DETAIL_CHARS)
    details = budget.keep(error.details, 1)
    return message, None if details is _GONE else details, cut or budget.cut


class _Budget:
    """What is left to spend on one ``details`` value while it is copied."""

    __slots__ = ("entries", "chars", "cut")

    def __init__(self, entries: int, chars: int) -> None:
        self.entries = entries
        self.chars = chars
        self.cut = False

    def text(self, value: str) -> str:
        """``value`` within `DETAIL_STRING_CHARS` and the text left; marks the copy cut when shortened."""
        room = min(self.chars, DETAIL_STRING_CHARS)
        if len(value) > room:
            self.cut = True
            value = value[:room]
        self.chars -= len(value)
        return value

    def room(self) -> bool:
        """Spend one entry if any (and some text) is left; else mark the copy cut."""
        if self.entries > 0 and self.chars > 0:
            self.entries -= 1
            return True
        self.cut = True
        return False

    def keep(self, value: Any, depth: int) -> Any:
        """A copy of ``value`` within what is left; a container cut to nothing is left out (`_GONE`)."""
        if not self.room():
            return _GONE
        if isinstance(value, str):
            return self.text(value)
        if not isinstance(value, dict | list | tuple) or not value:
            return value
        if depth > DETAIL_DEPTH:
            self.cut = True
            return _GONE
        if isinstance(value, dict):
            kept: dict[Any, Any] = {}
            for key, item in value.items():
                name = self.text(key) if isinstance(key, str) else key
                copy = self.keep(item, depth + 1)
                if copy is _GONE:
                    break
                kept[name] = copy
            return kept or _GONE
        items = []
        for item in value:
            copy = self.keep(item, depth + 1)
            if copy is _GONE:
                break
            items.append(copy)
        return items or _GONE


_GONE = object()
"""What `_Budget.keep` gives for a value it had no room for."""
