"""A test gateway with a tight rate limit, as a ``drizzle-gateway serve`` target.

``drizzle-gateway serve tests.support.throttled_app:make_gateway``: a client that sends
more than a few dozen requests at once meets ``RATE_LIMITED``.
"""

from __future__ import annotations

from drizzle_gateway import Gateway, Limits
from tests.support.serve_app import make_gateway as make_test_gateway

#: 20 frames a second, bursts of 30: re-subscribing 60 channels is refused in part.
THROTTLED = Limits(rate=20, burst=30)


def make_gateway() -> Gateway:
    """`tests.support.serve_app.make_gateway` with the `THROTTLED` limits."""
    return make_test_gateway(limits=THROTTLED)
