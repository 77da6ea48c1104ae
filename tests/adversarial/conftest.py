"""The adversarial suite: every module is marked ``adversarial`` and none may leave a traceback in the log."""

from __future__ import annotations

import gc
import logging

import pytest


@pytest.fixture(autouse=True)
def no_tracebacks(server_errors, caplog: pytest.LogCaptureFixture):
    """After each attack: no ERROR record from the gateway, and no record with a traceback from any logger."""
    yield
    assert not server_errors(), [record.getMessage() for record in server_errors()]
    traced = [record for record in caplog.records if record.exc_info or record.levelno >= logging.ERROR]
    assert not traced, [f"{record.name}: {record.getMessage()}" for record in traced]


@pytest.fixture(autouse=True)
def test_heap_left_out_of_collections():
    """Before each attack, collect the garbage of earlier tests and freeze what is left.

    The test process holds every collected module (about 126,000 objects) besides the
    gateway; a full collection of them takes tens of ms and would be charged to the
    bystander. A gateway process carries no such heap; what the attack allocates is
    still collected as usual.
    """
    gc.collect()
    gc.freeze()
    yield
    gc.unfreeze()
