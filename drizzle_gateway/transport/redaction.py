"""Credentials never reach the log: a filter for the log lines the gateway causes.

Tokens passed in a handshake URL (``/ws?token=...``) would otherwise appear
in Tornado's access log (``101 GET /ws?token=... (127.0.0.1)``) and in its
uncaught-exception lines, and passwords in URLs (``redis://user:pw@host``)
wherever a URL is logged. A credential can hide under any parameter name
(``?t=``, ``?access-token=``, a percent-encoded ``?%74oken=``), so the rule
keeps query parameter names and never their values: `redact` replaces every
value, and every query component without a name, with ``[redacted]``, and
so the user-info of URLs. `RedactCredentials` applies it to every record of
a logger.
"""

from __future__ import annotations

import logging
import re

REDACTED = "[redacted]"

# A value runs to the next ``&`` or whitespace, and nothing else ends it: Tornado reads ``?token=a;b``,
# ``a#b``, ``a'b`` and ``a"b`` from a client as one value, so stopping at those would log its tail.
# Redacting a little too much (a closing quote, a ``;`` parameter) is the safe side.
_STOP = r"&\s"
_NAME = r"[^=&;#\s'\"]*"  # a name ends sooner: ``?a=1;token=x`` is redacted as one value either way
_QUERY_VALUE = re.compile(rf"([?&;]{_NAME}=)[^{_STOP}]*")
_QUERY_BARE = re.compile(rf"([?&])[^={_STOP}]+(?=[{_STOP}]|$)")  # ``?abc123``: a value without a name
_URL_USERINFO = re.compile(r"\b([a-z][a-z0-9+.-]*://)[^/\s]*@", re.IGNORECASE)  # to the last @ before a /

LOGGERS = ("tornado.access", "tornado.application", "tornado.general", "drizzle_gateway")
"""The loggers `install` filters: Tornado's three and the gateway's own."""


def redact(text: str) -> str:
    """``text`` with the values of query parameters and URL user-info (``user:password@``) redacted."""
    if "?" in text or "&" in text or ";" in text:
        text = _QUERY_BARE.sub(rf"\1{REDACTED}", _QUERY_VALUE.sub(rf"\1{REDACTED}", text))
    if "@" in text:
        text = _URL_USERINFO.sub(rf"\1{REDACTED}@", text)
    return text


class RedactCredentials(logging.Filter):
    """Rewrites a record's message with `redact` (the record is always kept)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


def install(names: tuple[str, ...] = LOGGERS) -> None:
    """Add one `RedactCredentials` to each named logger (again: no-op)."""
    for name in names:
        logger = logging.getLogger(name)
        if not any(isinstance(existing, RedactCredentials) for existing in logger.filters):
            logger.addFilter(RedactCredentials())
