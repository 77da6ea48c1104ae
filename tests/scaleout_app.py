"""The test gateway (todo example + tests/resources.py) as ``MODULE:ATTR`` for subprocesses.

``drizzle-gateway serve tests.scaleout_app:make_gateway --redis URL``
"""

from __future__ import annotations

from drizzle_gateway import Gateway
from examples.todo.app import make_gateway as make_todo_gateway
from tests.resources import TEST_RESOURCES, TEST_TOPICS


def make_gateway() -> Gateway:
    """The same gateway the in-process tests' ``gateway`` fixture serves."""
    gateway = make_todo_gateway()
    for resource in TEST_RESOURCES:
        gateway.add_resource(resource)
    for topic in TEST_TOPICS:
        gateway.add_topic(topic)
    return gateway
