"""The adversarial suite: every module is marked ``adversarial`` and none may leave a traceback in the log."""

from __future__ import annotations

import logging

import pytest


@pytest.fixture(autouse=True)
def no_tracebacks(server_errors, caplog: pytest.LogCaptureFixture):
    """After each attack: no ERROR record from the gateway, and no record with a traceback from any logger."""
    yield
    assert not server_errors(), [record.getMessage() for record in server_errors()]
    traced = [record for record in caplog.records if record.exc_info or record.levelno >= logging.ERROR]
    assert not traced, [f"{record.name}: {record.getMessage()}" for record in traced]
