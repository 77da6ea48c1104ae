"""Prometheus metrics of one serving gateway, in a registry of its own.

Each `Hub` builds one `Metrics` (unless the gateway was made with
``metrics=False``), so two gateways in one process never share a series and
nothing here is module-level state. What the hub already knows (open
connections, the broker's state, the history kept) is read at scrape time by
`HubCollector`, which costs nothing between scrapes. What happens (requests,
publishes, deliveries, closes, authentication failures) is counted as it
happens, through label children bound once per action, topic pattern and code:
the hot paths pay one dictionary lookup and one increment.

Labels are bounded whatever clients send: requests are labelled by the
resource and action they found (an unknown one is ``unknown``), publishes and
deliveries by the topic's *pattern* (never the concrete channel), closes by
the known close codes (``other`` for the rest).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, Protocol

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from ..brokers.base import Monitored
from ..wire.dialect import CloseCode
from ..wire.errors import ActionError, ErrorCode

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric

    from ..brokers.base import Broker
    from ..contract.resources import Action, Resource
    from ..contract.topics import Topic
    from ..wire.dialect import Request

OK = "OK"
"""The ``code`` label of a request that got its reply."""

UNKNOWN = "unknown"
"""The ``resource`` and ``action`` labels of a request that named neither a known resource nor action."""

BUILTIN = "__builtin__"
"""The ``resource`` label of the built-in actions (``__ping__``, ``__subscribe__``...)."""

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
"""Upper bounds (seconds) of the request latency histogram's buckets."""

KNOWN_CLOSE_CODES = frozenset({
    CloseCode.NORMAL, CloseCode.GOING_AWAY, CloseCode.PROTOCOL_ERROR, 1003, 1005, CloseCode.ABNORMAL, 1007,
    CloseCode.POLICY_VIOLATION, CloseCode.MESSAGE_TOO_BIG, CloseCode.INTERNAL_ERROR, CloseCode.SERVICE_RESTART,
    CloseCode.UNAUTHENTICATED, CloseCode.TOKEN_EXPIRED, CloseCode.SLOW_CONSUMER,
})
"""Close codes counted under their own label; any other is counted as ``other``."""


class Lookups(Protocol):
    """What the metrics ask of the registry to bound their labels to what is declared."""

    def find_action(self, request: Request) -> tuple[type[Resource], Action]:
        """The resource class and action a request names; RESOURCE_ or ACTION_NOT_FOUND."""

    def find_topic(self, channel: str) -> tuple[Topic, dict[str, str]]:
        """The declared topic of a concrete channel, and its params; TOPIC_NOT_FOUND."""


class Observed(Protocol):
    """What `HubCollector` reads of the hub at scrape time."""

    @property
    def broker(self) -> Broker:
        """The hub's broker."""

    @property
    def closing(self) -> bool:
        """Whether the gateway is shutting down."""

    @property
    def session_count(self) -> int:
        """How many sessions are open."""


class Increment(Protocol):
    """A counter child bound to its labels."""

    def inc(self, amount: float = 1) -> None:
        """Add ``amount``."""


class _Series:
    """One action's bound children: its latency histogram and its count per outcome code."""

    __slots__ = ("labels", "latency", "codes", "counter")

    def __init__(self, counter: Counter, latency: Histogram, resource: str, action: str) -> None:
        self.counter = counter
        self.labels = (resource, action)
        self.latency = latency.labels(resource, action)
        self.codes: dict[str, Increment] = {}

    def count(self, code: str) -> None:
        child = self.codes.get(code)
        if child is None:
            child = self.codes[code] = self.counter.labels(*self.labels, code)
        child.inc()


class Metrics:
    """The series of one gateway, and its `CollectorRegistry` (``registry``), which `/metrics` exposes."""

    def __init__(self, lookups: Lookups, hub: Observed | None = None,
                 clock: Callable[[], float] = time.perf_counter) -> None:
        self.registry = CollectorRegistry()
        self.clock = clock
        self._lookups = lookups
        self._requests = Counter("drizzle_requests", "Requests answered, by resource, action and outcome code "
                                 "(OK or the error code).", ("resource", "action", "code"), registry=self.registry)
        self._latency = Histogram("drizzle_request_duration_seconds", "Seconds from a request's start to its "
                                  "reply or error frame, by resource and action.", ("resource", "action"),
                                  buckets=LATENCY_BUCKETS, registry=self.registry)
        self._publishes = Counter("drizzle_publishes", "Events published from this process, by topic pattern "
                                  "(an idempotency duplicate, delivered to nobody, is not counted).",
                                  ("topic",), registry=self.registry)
        self._deliveries = Counter("drizzle_deliveries", "Event frames handed to this process's subscribers, by "
                                   "topic pattern.", ("topic",), registry=self.registry)
        self._closes = Counter("drizzle_closes", "Websocket connections closed, by close code (4008: slow "
                               "consumer; 1006: dropped without a close frame).", ("code",), registry=self.registry)
        self._auth_refusals = Counter("drizzle_auth_refusals", "Authentication attempts refused (credentials "
                                      "presented and not accepted).", registry=self.registry)
        self._auth_throttled = Counter("drizzle_auth_throttled", "Authentication attempts refused unchecked: the "
                                       "client's address failed too often.", registry=self.registry)
        self._series: dict[tuple[str | None, str], _Series] = {}
        self._unknown = _Series(self._requests, self._latency, UNKNOWN, UNKNOWN)
        self._topics: dict[str, Increment] = {}  # per pattern: its publishes
        self._delivered: dict[str, Increment] = {}  # per pattern: its deliveries
        if hub is not None:
            self.registry.register(HubCollector(hub))

    # -- requests ---------------------------------------------------------------

    def request_done(self, request: Request, code: str, began: float | None = None) -> None:
        """Count ``request`` under ``code`` (`OK` or an `ErrorCode`); with ``began`` (a `clock` reading), time it."""
        series = self._series_of(request)
        series.count(code)
        if began is not None:
            series.latency.observe(self.clock() - began)

    def _series_of(self, request: Request) -> _Series:
        key = (request.resource, request.action)
        series = self._series.get(key)
        if series is not None:
            return series
        try:
            resource, action = self._lookups.find_action(request)
        except ActionError:
            return self._unknown  # not kept: a client naming a new action each time grows nothing
        name = request.resource if request.resource is not None else BUILTIN
        series = self._series[key] = _Series(self._requests, self._latency, name, action.name)
        return series

    # -- events -----------------------------------------------------------------

    def published(self, pattern: str) -> None:
        """One event published on a topic of ``pattern`` (not a duplicate: one that was delivered)."""
        child = self._topics.get(pattern)
        if child is None:
            child = self._topics[pattern] = self._publishes.labels(pattern)
        child.inc()

    def deliveries(self, channel: str) -> Increment:
        """The deliveries counter of ``channel``'s topic pattern (bind it once per channel)."""
        try:
            pattern = self._lookups.find_topic(channel)[0].pattern
        except ActionError:
            pattern = UNKNOWN
        child = self._delivered.get(pattern)
        if child is None:
            child = self._delivered[pattern] = self._deliveries.labels(pattern)
        return child

    # -- connections and authentication -----------------------------------------

    def closed(self, code: int | None) -> None:
        """One websocket closed with ``code`` (None: dropped without one)."""
        if code is None:
            code = CloseCode.ABNORMAL
        self._closes.labels(str(code) if code in KNOWN_CLOSE_CODES else "other").inc()

    def auth_failed(self, code: str) -> None:
        """An authentication attempt failed with ``code`` (UNAUTHENTICATED, or RATE_LIMITED when throttled)."""
        (self._auth_throttled if code == ErrorCode.RATE_LIMITED else self._auth_refusals).inc()


class HubCollector(Collector):
    """The hub's state, read at each scrape: connections, draining, the broker's state and history."""

    def __init__(self, hub: Observed) -> None:
        self._hub = hub

    def describe(self) -> list[Metric]:
        """Nothing up front: the series depend on the broker, so the registry asks `collect` instead."""
        return []

    def collect(self) -> Iterator[Metric]:
        """The current values."""
        hub = self._hub
        yield GaugeMetricFamily("drizzle_connections", "Websocket connections open now.", hub.session_count)
        yield GaugeMetricFamily("drizzle_draining", "1 while the gateway is shutting down.", int(hub.closing))
        broker = hub.broker
        up = "1 while the broker's backend is reachable (an in-process broker always is)."
        if isinstance(broker, Monitored):
            yield GaugeMetricFamily("drizzle_broker_up", up, int(broker.connected))
            yield CounterMetricFamily("drizzle_broker_reconnects", "Times the broker came back after an outage.",
                                      broker.reconnects)
        else:
            yield GaugeMetricFamily("drizzle_broker_up", up, 1)
        weight: Any = getattr(broker, "history_weight", None)
        if weight is not None:
            channels, size = weight
            yield GaugeMetricFamily("drizzle_history_channels", "Channels whose history this process keeps.",
                                    channels)
            yield GaugeMetricFamily("drizzle_history_bytes", "Bytes of retained events this process keeps.", size)
