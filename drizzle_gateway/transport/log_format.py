"""How ``drizzle-gateway serve`` writes its log: text lines, or one JSON object per line.

Both formats name the connection a record is about, where known (the
``client`` and ``user`` that `ConnectionContext` sets), and both pass the
message and the formatted exception through `redact`, so a credential in
an exception's text or in a logger outside the ones `redaction.install`
filters is redacted too.

A JSON line holds ``time`` (ISO 8601, UTC, milliseconds), ``level``,
``logger``, ``message``, then ``client`` and ``user`` when known and
``exc_info`` (the formatted traceback, one string) when there is one.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import TextIO

from .log_context import ConnectionContext
from .redaction import RedactCredentials, redact

FORMATS = ("text", "json")
"""The values of ``--log-format``."""

TEXT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
TEXT_WITH_PROCESS = "%(asctime)s %(levelname)s %(name)s [%(process)d]: %(message)s"
"""The text format under ``--workers``: which worker logged the line."""


def _who(record: logging.LogRecord) -> dict[str, str]:
    found = {"client": getattr(record, "client", None), "user": getattr(record, "user", None)}
    return {key: str(value) for key, value in found.items() if value is not None}


class TextFormatter(logging.Formatter):
    """``time LEVEL logger: message [client=... user=...]``, redacted."""

    def __init__(self, process: bool = False) -> None:
        super().__init__(TEXT_WITH_PROCESS if process else TEXT)

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 - logging's name
        line = redact(super().formatMessage(record))
        who = _who(record)
        return f"{line} [{' '.join(f'{key}={value}' for key, value in who.items())}]" if who else line

    def formatException(self, ei: logging._SysExcInfoType) -> str:  # noqa: N802 - logging's name
        return redact(super().formatException(ei))


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line (see the module's docstring); ``process`` adds ``"pid"``."""

    def __init__(self, process: bool = False) -> None:
        super().__init__()
        self.process = process

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, str] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")
                    .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": redact(record.getMessage()),
            **_who(record),
        }
        if self.process:
            entry["pid"] = str(record.process)
        if record.exc_info:
            entry["exc_info"] = redact(self.formatException(record.exc_info))
        elif record.exc_text:
            entry["exc_info"] = redact(record.exc_text)
        if record.stack_info:
            entry["stack_info"] = redact(self.formatStack(record.stack_info))
        return json.dumps(entry, ensure_ascii=False)


def configure(level: str | int = "INFO", style: str = "text", stream: TextIO | None = None,
              process: bool = False) -> logging.Handler:
    """Send every log record of ``level`` and above to ``stream`` (stderr) in ``style`` (`FORMATS`).

    ``process`` names the process of each record (``--workers``): ``[pid]``
    in text, ``"pid"`` in JSON.

    The root logger gets one handler, replacing those it had; the handler
    adds `ConnectionContext` and redacts every record (`RedactCredentials`).
    """
    if style not in FORMATS:
        raise ValueError(f"log format must be one of {', '.join(FORMATS)}, got {style!r}")
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter(process) if style == "json" else TextFormatter(process))
    handler.addFilter(RedactCredentials())
    handler.addFilter(ConnectionContext())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    return handler
