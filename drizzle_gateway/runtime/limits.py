"""Limits: the knobs that keep one client from hurting the others.

All of them live in one `Limits` object given to ``Gateway(limits=...)``;
every field has a default that suits a public gateway, and ``None``
switches it off. Values are checked when the object is made.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable
from dataclasses import dataclass, fields
from typing import Any

UNLIMITED_FRAME_BYTES = 2**63 - 1
"""What Tornado is told as the largest frame when ``max_frame_bytes`` is None."""

QUEUE_CAP_FACTOR = 4
"""A congested peer's queue may grow to this many times ``send_queue_bytes`` before it is closed."""


@dataclass(frozen=True)
class Limits:
    """Per-connection limits, timeouts and the heartbeat; ``None`` switches any of them off.

    - ``max_frame_bytes``: largest incoming frame; bigger ones close the socket with 1009.
    - ``max_depth``: deepest nesting of arrays/objects in a frame (VALIDATION_ERROR).
    - ``max_keys``: most object keys in one frame, counted over all its objects (VALIDATION_ERROR).
    - ``max_items``: most array items in one frame, counted over all its arrays (VALIDATION_ERROR).
      Within it, one request's input costs at most about 10 ms of the loop, even when every
      item fails validation.
    - ``max_in_flight``: requests of one connection running at once; while that many run,
      the socket is not read, so further requests wait (backpressure, never a refusal).
    - ``cpu_share``: the share of the event loop one connection's costly requests may take on
      average: a request that held the loop for more than `pacing.COSTLY_STEP` (2 ms) pauses
      its connection (nothing more is read) for ``1 / cpu_share - 1`` times that long
      (backpressure, never a refusal). Cheap requests are never paused. Delivering a publish
      to the channel's subscribers is not counted: the publish ``rate`` bounds it, and a
      connection's publishes cost least when they run together and share one flush.
    - ``rate``, ``burst``: frames per second a connection may send on average, and in a
      burst (RATE_LIMITED, with ``details.retry_after`` in seconds). ``burst=None``: one
      second's worth of ``rate``.
    - ``max_subscriptions``: channels one connection may listen to (LIMIT_EXCEEDED).
    - ``action_timeout``: seconds an action may run; then it is cancelled (TIMEOUT).
    - ``auth_timeout``: seconds a connection may stay unauthenticated when the gateway has
      an ``authenticate`` hook; then it is closed with 4001.
    - ``ping_interval``, ``ping_timeout``: server-side websocket pings; a peer that does
      not answer within ``ping_timeout`` seconds is disconnected (None: Tornado's default,
      three intervals and at least 30 s).
    - ``shutdown_timeout``: seconds `Gateway.close` lets in-flight actions finish (None:
      as long as they run, each still bounded by ``action_timeout``).
    - ``send_queue_bytes``: the high-water mark of what waits to be sent to one peer
      (queued by the gateway plus buffered by Tornado). Above it the peer is congested
      until it has read down to half of it (the low-water mark); its own requests wait
      for that, and publishers to its channels wait too, for at most ``publish_wait``.
      A congested peer with more than `queue_cap` (4 x ``send_queue_bytes``) waiting
      when an event is queued for it is closed as a slow consumer (4008).
    - ``send_timeout``: seconds a peer may stay congested (above the low-water mark
      since it passed the high-water mark); then it cannot keep up and is closed as a
      slow consumer (4008). None: never for time (the cap still applies).
    - ``publish_wait``: seconds one congested peer may hold the publishers of its
      channels, once per congestion; after that they go on and its queue grows (to
      the cap). None: publishers wait until it drains or is closed.
    - ``max_members``: members one channel of a topic with presence may have, over every
      process; a subscription that would add one more is refused (LIMIT_EXCEEDED).
    - ``max_member_bytes``: the largest presence entry (its JSON) a subscription may have
      (INVALID_DATA).
    - ``presence_rate``, ``presence_burst``: joins and leaves per second sent to the
      subscribers of one channel on average, and in a burst (None: one second's worth of
      ``presence_rate``). Those over it are not sent; once the rate allows, the channel's
      subscribers get one ``stale`` notice telling them to list the members again.
    - ``handshake_timeout``: seconds a connection may take to send its request headers (and
      body), and may stay idle between HTTP requests; then the server closes it. Applied by
      the server `Gateway.http_server` makes (None: Tornado's default, an hour).
    - ``busy_poll``: seconds the event loop keeps polling its sockets after it read a message,
      before it sleeps (`busy_poll.BusyPoll`): a peer's next request, sent as soon as it read
      the reply, is then read without waiting for the kernel to wake the process. Costs up
      to that much CPU per message on a quiet server (none on a busy one). None: sleep at once.
    """

    max_frame_bytes: int | None = 1024 * 1024
    max_depth: int | None = 32
    max_keys: int | None = 1000
    max_items: int | None = 2_000
    max_in_flight: int | None = 32
    rate: float | None = 100.0
    burst: int | None = 200
    max_subscriptions: int | None = 100
    action_timeout: float | None = 30.0
    auth_timeout: float | None = 10.0
    ping_interval: float | None = 20.0
    ping_timeout: float | None = 20.0
    shutdown_timeout: float | None = 10.0
    send_queue_bytes: int | None = 1024 * 1024
    send_timeout: float | None = 5.0
    publish_wait: float | None = 0.5
    handshake_timeout: float | None = 10.0
    cpu_share: float | None = 0.25
    max_members: int | None = 1000
    max_member_bytes: int | None = 4096
    presence_rate: float | None = 100.0
    presence_burst: int | None = 1000
    busy_poll: float | None = 0.0002

    def __post_init__(self) -> None:
        for field in fields(self):
            value = getattr(self, field.name)
            if value is None:
                continue
            counts = field.type.startswith("int")
            kinds = {"rate": "a positive number of frames per second",
                     "presence_rate": "a positive number of events per second",
                     "cpu_share": "a share of the loop, above 0 and at most 1"}
            kind = "a positive integer" if counts else kinds.get(field.name, "a positive number of seconds")
            valid = not isinstance(value, bool) and (
                isinstance(value, int) if counts else isinstance(value, int | float) and math.isfinite(value))
            if valid and field.name == "cpu_share":
                valid = value <= 1
            lowest = 0 if field.name == "ping_interval" else None  # 0 also means no pings, as Tornado reads it
            if not valid or not (value > 0 or value == lowest):
                raise ValueError(f"Limits.{field.name} must be {kind} or None (off), got {value!r}")

    @property
    def frame_bytes(self) -> int:
        """``max_frame_bytes`` as Tornado needs it: an int, however large."""
        return self.max_frame_bytes if self.max_frame_bytes is not None else UNLIMITED_FRAME_BYTES

    @property
    def queue_bytes(self) -> float:
        """``send_queue_bytes`` as a comparable bound (infinite when off)."""
        return self.send_queue_bytes if self.send_queue_bytes is not None else math.inf

    @property
    def queue_cap(self) -> float:
        """The most a congested peer may have waiting when an event is queued: 4 x ``send_queue_bytes``."""
        return QUEUE_CAP_FACTOR * self.queue_bytes

    @property
    def burst_size(self) -> float:
        """Frames a connection may send at once: ``burst``, or one second of ``rate``."""
        if self.burst is not None:
            return float(self.burst)
        return float(max(1, math.ceil(self.rate or 1)))

    def may_exceed_shape(self, text: str) -> bool:
        """False when the frame's text alone proves it within ``max_depth``, ``max_keys`` and ``max_items``.

        Every nesting level needs a ``[`` or ``{``, every key a ``:``, and every
        array item but an array's first a ``,``, so counting those characters
        (in C, strings included) bounds all three; only frames that might
        exceed a limit are walked by `shape_error`.
        """
        if self.max_depth is not None and text.count("{") + text.count("[") > self.max_depth:
            return True
        if self.max_items is not None and text.count(",") + text.count("[") > self.max_items:
            return True
        return self.max_keys is not None and text.count(":") > self.max_keys

    @property
    def too_deep(self) -> str:
        """The VALIDATION_ERROR message of a frame nested deeper than ``max_depth``."""
        return f"frame is nested deeper than {self.max_depth} levels"

    def shape_error(self, value: Any) -> str | None:
        """Why ``value`` (a decoded frame) is too deep or has too many keys or array items, or None.

        Walks the value without recursion, so hostile nesting cannot exhaust the stack.
        """
        if self.max_depth is None and self.max_keys is None and self.max_items is None:
            return None
        max_depth = self.max_depth if self.max_depth is not None else float("inf")
        max_keys = self.max_keys if self.max_keys is not None else float("inf")
        max_items = self.max_items if self.max_items is not None else float("inf")
        keys = items = 0
        stack: list[tuple[Any, int]] = [(value, 1)]
        while stack:
            item, depth = stack.pop()
            if isinstance(item, dict):
                children: Iterable[Any] = item.values()
                keys += len(item)
                if keys > max_keys:
                    return f"frame has more than {self.max_keys} object keys"
            elif isinstance(item, list):
                children = item
                items += len(item)
                if items > max_items:
                    return f"frame has more than {self.max_items} array items"
            else:
                continue
            if depth > max_depth:
                return self.too_deep
            stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
        return None


class TokenBucket:
    """A token bucket: ``rate`` tokens a second, holding at most ``burst``."""

    __slots__ = ("rate", "burst", "tokens", "stamp")

    def __init__(self, rate: float, burst: float) -> None:
        self.rate = rate
        self.burst = float(max(burst, 1))
        self.tokens = self.burst
        self.stamp = time.monotonic()

    def take(self) -> float:
        """Take one token: 0.0 if there was one, else the seconds until there will be."""
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / self.rate
