"""The gateway the stress suite's processes serve: ``tests.stress.app:make_stress_gateway``.

It is `tests.support.serve_app.make_unthrottled_gateway` plus ``stress.{room}``, a
topic with a small history (so a backlog outgrows it) that clients may
publish to, ``stressttl.{room}``, the same with a ``history_ttl``, and
``stress_probe``, a test-only resource whose ``counts`` action says what
the process holds, so the suite can check that nothing leaked after a run.
"""

from __future__ import annotations

import asyncio
import os
from collections import Counter
from typing import Any

from drizzle_gateway import Gateway, Resource, Topic, action
from drizzle_gateway.brokers.redis import RedisBroker
from tests.support.resources import Message
from tests.support.serve_app import make_unthrottled_gateway

HISTORY_SIZE = 20
"""Events kept per ``stress.{room}`` channel: small, so a few seconds of backlog outgrow it."""
HISTORY_TTL = 60.0
"""Seconds ``stressttl.{room}`` keeps each event: its keys in Redis must all expire."""


def _task_name(task: asyncio.Task) -> str:
    coro = task.get_coro()
    return getattr(coro, "__qualname__", type(coro).__name__)


class StressProbe(Resource):
    """Test-only: what this gateway process holds right now (never served by a real app)."""

    name = "stress_probe"

    @action()
    def counts(self, data: Any) -> dict[str, Any]:
        """Sessions, subscriptions (fan-out and broker), asyncio tasks by coroutine, open descriptors."""
        gateway = self.gateway
        fanout = gateway.hub.fanout
        broker = gateway.broker
        # Private attributes, read here only: this resource exists to find leaks in them.
        # Read directly, never with a default: an attribute that moved must fail here, not read as "no leak".
        channels: dict[str, int] = {name: fanout.subscribers(name) for name in fanout._channels}
        return {
            "pid": os.getpid(),
            "sessions": len(gateway.hub.sessions),
            "session_channels": sum(len(session.channels) for session in gateway.hub.sessions),
            "fanout_channels": channels,
            "fanout_floors": sum(len(floors) for floors in fanout._log._floors.values()),
            "broker_listeners": sorted(broker._listeners),
            "broker_redis_subscribed": sorted(broker._reader._subscribed) if isinstance(broker, RedisBroker) else [],
            "broker_pending": broker.pending if isinstance(broker, RedisBroker) else 0,
            "tasks": dict(Counter(_task_name(task) for task in asyncio.all_tasks())),
            "fds": len(os.listdir("/proc/self/fd")),
        }


def make_stress_gateway() -> Gateway:
    """The unthrottled test gateway, ``stress.{room}`` and ``stressttl.{room}`` (with history), ``stress_probe``."""
    gateway = make_unthrottled_gateway()
    gateway.add_topic(Topic("stress.{room}", Message, history=HISTORY_SIZE, client_publish=True))
    gateway.add_topic(Topic("stressttl.{room}", Message, history=HISTORY_SIZE, history_ttl=HISTORY_TTL,
                            client_publish=True))
    gateway.add_resource(StressProbe)
    return gateway
