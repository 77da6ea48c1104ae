"""The test gateway as a ``drizzle-gateway serve`` target: ``tests.serve_app:make_gateway``."""

from __future__ import annotations

from drizzle_gateway import Gateway
from examples.todo.app import make_gateway as make_todo_gateway
from tests.resources import TEST_RESOURCES, TEST_TOPICS


def make_gateway() -> Gateway:
    """The todo example's gateway plus the test resources and topics (the ``gateway`` fixture)."""
    gateway = make_todo_gateway()
    for resource in TEST_RESOURCES:
        gateway.add_resource(resource)
    for topic in TEST_TOPICS:
        gateway.add_topic(topic)
    return gateway
