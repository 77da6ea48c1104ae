"""A gateway that authenticates, with a tight auth throttle, as a ``drizzle-gateway serve`` target.

``drizzle-gateway serve tests.support.proxied_app:make_gateway --trusted-proxy 127.0.0.1``: the
tests behind a proxy, and of the JSON log, watch whose address failed attempts are counted against.
"""

from __future__ import annotations

from typing import Any

from drizzle_gateway import AuthThrottle, Credentials, Gateway
from tests.support.serve_app import make_gateway as make_test_gateway

USERS = {"ann-token": {"name": "ann", "token": "ann-token"}}
"""The one valid token, and its user (which holds the token: it must never be logged)."""

BURST = 2
"""Failed attempts an address may make before it is throttled (almost never refilled)."""


def authenticate(credentials: Credentials) -> Any:
    """The user of the ``?token=`` query argument or of an ``__auth__`` token, else None (refused)."""
    return USERS.get(credentials.token or credentials.query.get("token", ""))


def make_gateway() -> Gateway:
    """`tests.support.serve_app.make_gateway` with `authenticate` and a throttle of `BURST` attempts."""
    return make_test_gateway(authenticate=authenticate, auth_throttle=AuthThrottle(rate=0.001, burst=BURST))
