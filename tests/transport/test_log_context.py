"""Log records name the connection they are about: its client's address and its user.

Over real sockets, behind a trusted proxy (the clients bind 127.0.0.1 and
forward an address), with a handler that carries `ConnectionContext`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from types import SimpleNamespace

import pytest
from tornado.httpclient import HTTPRequest
from tornado.websocket import websocket_connect

from drizzle_gateway.client import Client, RemoteError
from drizzle_gateway.runtime.auth import Credentials
from drizzle_gateway.transport.log_context import MAX_LABEL, ConnectionContext, user_label

# -- the user's label ------------------------------------------------------------------


@pytest.mark.parametrize(("user", "label"), [
    (None, None),
    ("ann", "ann"),
    (42, "42"),
    (True, None),
    ({"id": 7, "name": "ann", "token": "s3cret"}, "7"),
    ({"name": "ann", "token": "s3cret"}, "ann"),
    ({"sub": "auth0|123"}, "auth0|123"),
    ({"token": "s3cret", "role": "admin"}, None),  # nothing that names the user: nothing
    (SimpleNamespace(username="bob", password="pw"), "bob"),
    (SimpleNamespace(id=None, name="bob"), "bob"),
    (object(), None),
    ("x" * 1000, "x" * MAX_LABEL),
])
def test_a_user_is_labelled_by_a_name_never_by_its_whole_object(user, label):
    assert user_label(user) == label


def test_outside_any_connection_a_record_names_no_one_and_extra_values_stay():
    context = ConnectionContext()
    plain = logging.LogRecord("drizzle_gateway", logging.INFO, __file__, 1, "hello", None, None)
    assert context.filter(plain) and (plain.client, plain.user) == (None, None)
    given = logging.LogRecord("drizzle_gateway", logging.INFO, __file__, 1, "hello", None, None)
    given.client, given.user = "198.51.100.7", "ann"
    assert context.filter(given) and (given.client, given.user) == ("198.51.100.7", "ann")


# -- over real sockets ---------------------------------------------------------------------

USERS = {"ann-token": {"name": "ann", "token": "ann-token"}, "bob-token": {"name": "bob", "token": "bob-token"}}


def authenticate(credentials: Credentials):
    return USERS.get(credentials.token or credentials.headers.get("Authorization", "").removeprefix("Bearer "))


@pytest.fixture
def gateway_options() -> dict:
    return {"authenticate": authenticate, "trusted_proxies": ["127.0.0.1"]}


@pytest.fixture
def records() -> Iterator[list[logging.LogRecord]]:
    """Every record of the gateway's and Tornado's loggers, through a handler that has `ConnectionContext`."""
    caught: list[logging.LogRecord] = []
    handler = logging.Handler(logging.DEBUG)
    handler.emit = caught.append  # type: ignore[method-assign]
    handler.addFilter(ConnectionContext())
    loggers = [logging.getLogger(name) for name in ("drizzle_gateway", "tornado.access")]
    levels = [each.level for each in loggers]
    for each in loggers:
        each.addHandler(handler)
        each.setLevel(logging.INFO)
    yield caught
    for each, level in zip(loggers, levels, strict=True):
        each.removeHandler(handler)
        each.setLevel(level)


async def behind_proxy(ws_url: str, client: str, token: str) -> Client:
    """A `Client` whose handshake came through the trusted proxy (127.0.0.1) for ``client``, authenticated."""
    connection = Client(ws_url, headers={"X-Forwarded-For": client, "Authorization": f"Bearer {token}"})
    return await connection.connect()


@pytest.mark.gen_test
async def test_the_lines_a_connection_causes_name_its_client_and_its_user(ws_url, records):
    ann = await behind_proxy(ws_url, "198.51.100.7", "ann-token")
    bob = await behind_proxy(ws_url, "198.51.100.8", "bob-token")
    try:
        for _ in range(2):  # interleaved: each failure is logged in its own connection's context
            outcomes = await asyncio.gather(ann.call("lab", "fail"), bob.call("lab", "fail"), return_exceptions=True)
            assert all(isinstance(outcome, RemoteError) for outcome in outcomes)
    finally:
        await ann.close()
        await bob.close()
    failures = [(r.client, r.user) for r in records if "failed" in r.getMessage()]
    assert sorted(failures) == [("198.51.100.7", "ann")] * 2 + [("198.51.100.8", "bob")] * 2
    access = [(r.getMessage().split(" (")[1].split(")")[0], r.client) for r in records if r.name == "tornado.access"]
    assert access == [("198.51.100.7", "198.51.100.7"), ("198.51.100.8", "198.51.100.8")]


@pytest.mark.gen_test
async def test_a_refused_handshake_is_logged_with_the_client_and_no_user(ws_url, records):
    request = HTTPRequest(ws_url, headers={"X-Forwarded-For": "198.51.100.9", "Authorization": "Bearer nobody"})
    ws = await websocket_connect(request)
    ws.close()
    access = [(r.client, r.user) for r in records if r.name == "tornado.access"]
    assert access == [("198.51.100.9", None)]
