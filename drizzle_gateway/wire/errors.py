"""Errors as data: every failure a client can see is an `ActionError`."""

from __future__ import annotations

from typing import Any

from marshmallow.exceptions import ValidationError

from .codec import encode


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
    Whatever they hold, they can be encoded: ``details`` are copied by the
    rule of `json_safe`, and a message that is not a string is its text.
    """
    message = error.message if isinstance(error.message, str) else _text(error.message)
    cut = len(message) > ERROR_TEXT_CHARS
    if cut:
        message = message[:ERROR_TEXT_CHARS] + "..."
    if error.details is None:
        return message, None, cut
    budget = _Budget(DETAIL_ENTRIES, DETAIL_CHARS)
    details = budget.keep(error.details, 1)
    return message, None if details is _GONE else details, cut or budget.cut


def json_safe(value: Any) -> Any:
    """One value of ``details`` as an error frame carries it (docs/protocol.md, "Error codes").

    marshmallow's messages may hold more than text: a field that tries
    several others (marshmallow_dataclass's ``Union``) keeps their
    ``ValidationError`` objects. The rule: a ``ValidationError`` is its
    ``messages``; strings, numbers, booleans, None, lists, tuples and dicts
    are kept (their items by this rule); any other value stays when the
    JSON rule (`codec.encode`) writes it (a date, a Decimal, a UUID...) and
    is otherwise its ``str()``. This gives one level; `bounded` applies it
    at every level, as does a dict key the JSON rule cannot write, which
    is its text.
    """
    if isinstance(value, ValidationError):
        return value.messages
    if value is None or isinstance(value, str | int | float | dict | list | tuple):
        return value
    return value if _encodable(value) else _text(value)


def _encodable(value: Any) -> bool:
    try:
        encode(value)
    except (TypeError, ValueError, RecursionError):
        return False
    return True


def _text(value: Any) -> str:
    """``str(value)``, or the name of its type in angle brackets when even that fails."""
    try:
        return str(value)
    except Exception:
        return f"<{type(value).__name__}>"


def _key(key: Any) -> Any:
    """A dict key the JSON rule can write (a string, a number...), or its text."""
    if isinstance(key, str | int | float) or key is None or _encodable({key: None}):
        return key
    return _text(key)


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
        """A JSON-safe copy of ``value`` within what is left; a container cut to nothing is left out (`_GONE`)."""
        value = json_safe(value)
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
                key = _key(key)
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
