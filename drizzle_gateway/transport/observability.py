"""HTTP routes for operators: ``/metrics`` (Prometheus), ``/healthz`` and ``/readyz`` (Kubernetes probes).

``/metrics`` exposes the serving gateway's own registry (`Metrics`), in the
text format Prometheus scrapes. ``/healthz`` answers 200 while the process
serves HTTP at all (a liveness probe); ``/readyz`` answers 200 while the
gateway takes new connections (its broker's backend is reachable and it is
not shutting down), 503 otherwise (a readiness probe: take it out of the
load balancer, do not restart it).
"""

from __future__ import annotations

from typing import Any, Protocol

import tornado.web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from ..runtime.hub import Hub

METRICS_PATH = "/metrics"
HEALTH_PATH = "/healthz"
READY_PATH = "/readyz"


class Observed(Protocol):
    """What the routes need of the gateway: its runtime (built on first use)."""

    @property
    def hub(self) -> Hub:
        """The gateway's runtime."""


class _Probe(tornado.web.RequestHandler):
    """A plain-text answer nobody caches."""

    def initialize(self, gateway: Observed) -> None:
        self.gateway = gateway

    def answer(self, status: int, text: str) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "text/plain; charset=utf-8")
        self.set_header("Cache-Control", "no-store")
        self.finish(text + "\n")


class MetricsPage(_Probe):
    """``/metrics``: the gateway's registry in Prometheus's text format (404 with metrics off)."""

    def get(self) -> None:
        metrics = self.gateway.hub.metrics
        if metrics is None:
            self.answer(404, "metrics are off")
            return
        self.set_header("Content-Type", CONTENT_TYPE_LATEST)
        self.set_header("Cache-Control", "no-store")
        self.finish(generate_latest(metrics.registry))


class Healthz(_Probe):
    """``/healthz``: 200 while the process serves (a liveness probe)."""

    def get(self) -> None:
        self.answer(200, "ok")


class Readyz(_Probe):
    """``/readyz``: 200 while the gateway takes connections; 503 while its broker is unreachable or it closes."""

    def get(self) -> None:
        hub = self.gateway.hub
        if hub.ready():
            self.answer(200, "ready")
        else:
            self.answer(503, "shutting down" if hub.closing else "broker unreachable")


def health_routes(gateway: Observed) -> list[tuple[str, type, dict[str, Any]]]:
    """``/healthz`` and ``/readyz`` for ``gateway``."""
    return [(HEALTH_PATH, Healthz, {"gateway": gateway}), (READY_PATH, Readyz, {"gateway": gateway})]


def metrics_routes(gateway: Observed) -> list[tuple[str, type, dict[str, Any]]]:
    """``/metrics`` for ``gateway``."""
    return [(METRICS_PATH, MetricsPage, {"gateway": gateway})]
