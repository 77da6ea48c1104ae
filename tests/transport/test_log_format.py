"""The two log formats of ``drizzle-gateway serve``: text lines and one JSON object per line.

The command itself, writing them to stderr as a real subprocess, is in tests/test_cli.py.
"""

from __future__ import annotations

import io
import json
import logging
import re
import sys
from collections.abc import Iterator

import pytest

from drizzle_gateway.transport.log_format import JsonFormatter, TextFormatter, configure

ISO_UTC = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


def record(message: str = "user %s joined", *args: object, exc: BaseException | None = None,
           **attributes: object) -> logging.LogRecord:
    exc_info = None
    if exc is not None:
        try:
            raise exc
        except BaseException:  # noqa: BLE001 - the record carries it
            exc_info = sys.exc_info()
    made = logging.LogRecord("drizzle_gateway", logging.WARNING, __file__, 1, message, args or ("ann",), exc_info)
    for name, value in attributes.items():
        setattr(made, name, value)
    return made


def test_a_json_line_holds_time_level_logger_and_message():
    line = JsonFormatter().format(record(created=1_700_000_000.5))
    assert "\n" not in line
    assert json.loads(line) == {"time": "2023-11-14T22:13:20.500Z", "level": "WARNING", "logger": "drizzle_gateway",
                                "message": "user ann joined"}


def test_a_json_line_names_the_client_and_user_when_known():
    entry = json.loads(JsonFormatter().format(record(client="198.51.100.7", user="ann")))
    assert (entry["client"], entry["user"]) == ("198.51.100.7", "ann")
    entry = json.loads(JsonFormatter().format(record(client="198.51.100.7", user=None)))
    assert entry["client"] == "198.51.100.7" and "user" not in entry


def test_an_exception_is_one_string_field_and_the_line_stays_one_line():
    line = JsonFormatter().format(record("request %r failed", 3, exc=RuntimeError("boom\nsecond line")))
    assert "\n" not in line
    entry = json.loads(line)
    assert ISO_UTC.fullmatch(entry["time"])
    assert entry["message"] == "request 3 failed"
    assert entry["exc_info"].startswith("Traceback (most recent call last):")
    assert entry["exc_info"].endswith("RuntimeError: boom\nsecond line")


def test_credentials_are_redacted_from_the_message_and_the_exception():
    leaky = record("GET %s", "/ws?token=s3cret", exc=ValueError("cannot reach redis://app:hunter2@db:6379"))
    for line in (JsonFormatter().format(leaky), TextFormatter().format(leaky)):
        assert "s3cret" not in line and "hunter2" not in line
        assert "token=[redacted]" in line and "redis://[redacted]@db" in line


def test_a_text_line_ends_with_the_client_and_user_when_known():
    assert TextFormatter().format(record(client="198.51.100.7", user="ann")).endswith(
        "WARNING drizzle_gateway: user ann joined [client=198.51.100.7 user=ann]")
    assert TextFormatter().format(record()).endswith("WARNING drizzle_gateway: user ann joined")


@pytest.fixture
def root_logger() -> Iterator[logging.Logger]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield root
    root.handlers[:] = handlers
    root.setLevel(level)


def test_configure_gives_the_root_logger_one_handler_in_the_format(root_logger):
    stream = io.StringIO()
    configure("INFO", "json", stream)
    configure("INFO", "json", stream)  # again: still one handler
    assert len(root_logger.handlers) == 1
    logging.getLogger("drizzle_gateway.test").info("hello %s from /ws?token=%s", "ann", "s3cret")
    logging.getLogger("drizzle_gateway.test").debug("not at INFO")
    [line] = stream.getvalue().splitlines()
    assert json.loads(line)["message"] == "hello ann from /ws?token=[redacted]"  # a child logger's record too


def test_an_unknown_format_is_refused():
    with pytest.raises(ValueError, match="one of text, json"):
        configure("INFO", "yaml")
