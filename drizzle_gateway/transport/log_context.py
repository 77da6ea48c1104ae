"""Which connection a log line is about: its client's address and its user.

`Connection` binds itself (`bind`) as its handshake starts. Everything that
connection runs from then on (the handshake's checks, Tornado's access
line, each message, the tasks of its requests) runs in that context, so a
record logged there can name the client. `ConnectionContext`, a
``logging.Filter`` for handlers, sets two attributes on every record:
``client`` (the address, behind trusted proxies the forwarded one) and
``user`` (a short label of the authenticated user), each None where
unknown. A record about a connection logged outside its context (from a
flush or a timer, which may run in another connection's) passes them
itself: ``extra={"client": ..., "user": user_label(...)}``.

The user's label is never its whole object, which may hold a token: it is
the user itself when that is a string or a number, else its ``id``,
``username``, ``name`` or ``sub`` (a key of a mapping, or an attribute),
else nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from contextvars import ContextVar
from typing import Any, Protocol

USER_KEYS = ("id", "username", "name", "sub")
"""Where a user object's label is looked for, in order."""

MAX_LABEL = 200
"""A user label is cut to this many characters."""


class Known(Protocol):
    """What a log line can say about a connection."""

    @property
    def address(self) -> str:
        """The client's address."""

    @property
    def user(self) -> Any:
        """The authenticated user, or None."""


_current: ContextVar[Known | None] = ContextVar("drizzle_gateway.connection", default=None)


def bind(connection: Known) -> None:
    """Make ``connection`` the one the current context's log lines are about."""
    _current.set(connection)


def current() -> Known | None:
    """The connection the current context is about, or None."""
    return _current.get()


def user_label(user: Any) -> str | None:
    """A short label naming ``user`` (see the module's docstring), or None."""
    if user is None or isinstance(user, bool):
        return None
    if isinstance(user, str | int):
        return str(user)[:MAX_LABEL]
    for key in USER_KEYS:
        value = user.get(key) if isinstance(user, Mapping) else getattr(user, key, None)
        if isinstance(value, str | int) and not isinstance(value, bool):
            return str(value)[:MAX_LABEL]
    return None


class ConnectionContext(logging.Filter):
    """Sets ``record.client`` and ``record.user`` (None where unknown); ``extra=`` values are kept."""

    def filter(self, record: logging.LogRecord) -> bool:
        connection = _current.get()
        if not hasattr(record, "client"):
            record.client = connection.address if connection is not None else None
        if not hasattr(record, "user"):
            record.user = user_label(connection.user) if connection is not None else None
        return True
