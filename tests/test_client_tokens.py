"""The Python client's token: ``token=`` and ``get_token=``, sent after every connect and refreshed ahead of expiry.

The hook reads ``name`` (never expires) or ``name@deadline`` (unix seconds);
"nobody" is refused. Over real sockets: waiting past an expiry is an
unrefreshed twin's 4003 close, never a sleep.
"""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from drizzle_gateway import Identity
from drizzle_gateway.client import Client, ConnectionClosed, RemoteError
from drizzle_gateway.client_tokens import Refresher, TokenSource, expiry_of, refresh_delay
from drizzle_gateway.runtime.auth import Credentials
from drizzle_gateway.testing import TestClient
from tests.support.polling import wait_until
from tests.support.serve_app import make_gateway

# -- the pure parts ----------------------------------------------------------------------


@pytest.mark.parametrize(("expires_in", "ahead", "delay"), [
    (3600.0, 30.0, 3570.0),  # a long-lived token: refreshed `ahead` before its end
    (40.0, 30.0, 20.0),  # shorter than twice `ahead`: halfway
    (1.0, 30.0, 0.5),
    (0.0, 30.0, 0.0),
    (-2.0, 30.0, 0.0),  # past already: now
])
def test_a_refresh_is_due_ahead_of_the_expiry_or_halfway(expires_in, ahead, delay):
    assert refresh_delay(expires_in, ahead) == delay


def test_the_expiry_of_an_auth_reply():
    assert expiry_of({"authenticated": True, "expires_at": 1e9, "expires_in": 12.5}) == 12.5
    assert expiry_of({"authenticated": True}) is None
    assert expiry_of({"expires_in": "soon"}) is None
    assert expiry_of(None) is None


def test_a_token_source_asks_get_token_each_time_plain_or_async():
    counter = iter(range(100))
    assert asyncio.run(TokenSource(token="fixed").fetch()) == "fixed"
    plain = TokenSource(token="ignored", get_token=lambda: f"t{next(counter)}")
    assert [asyncio.run(plain.fetch()) for _ in range(2)] == ["t0", "t1"]

    async def fresh() -> str:
        return "async"

    assert asyncio.run(TokenSource(get_token=fresh).fetch()) == "async"
    assert not TokenSource().given and TokenSource(token="").given
    with pytest.raises(TypeError, match="get_token\\(\\) must return a str, not int"):
        asyncio.run(TokenSource(get_token=lambda: 7).fetch())


def test_a_failed_refresh_is_tried_again_halfway_to_the_expiry_then_given_up(caplog):
    caplog.set_level(logging.WARNING, logger="drizzle_gateway.client")
    tries: list[float] = []

    async def main() -> None:
        loop = asyncio.get_running_loop()
        start = loop.time()

        async def renew():
            tries.append(loop.time() - start)
            raise RemoteError("FORBIDDEN", "no")

        refresher = Refresher(renew, ahead=0.2)
        refresher.schedule({"expires_in": 0.8})
        assert refresher.running
        await wait_until(lambda: not refresher.running, 10)

    asyncio.run(main())
    assert 0.55 <= tries[0] <= 0.75  # 0.2 s ahead of 0.8
    assert all(b > a for a, b in zip(tries, tries[1:], strict=False)) and tries[-1] < 0.8
    gaps = [0.8 - t for t in tries]
    assert all(later <= earlier / 2 + 0.05 for earlier, later in zip(gaps, gaps[1:], strict=False))  # halving
    assert caplog.records[-1].getMessage() == (
        "token refresh failed (FORBIDDEN: no); the connection's identity is not renewed")


# -- over real sockets -------------------------------------------------------------------


def authenticate(credentials: Credentials):
    """``name`` or ``name@deadline`` from ``__auth__``; "nobody" is refused."""
    name, _, deadline = (credentials.token or "").partition("@")
    if not name or name == "nobody":
        return None
    return Identity({"name": name}, expires_at=float(deadline)) if deadline else {"name": name}


@pytest.fixture
def gateway():
    return make_gateway(authenticate=authenticate, auth_throttle=False)


async def whoami(client) -> str:
    return (await client.call("lab", "whoami"))["user"]["name"]


async def close_code(client) -> int | None:
    with pytest.raises(ConnectionClosed) as closed:
        await client.next_event(timeout=10)
    return closed.value.code


@pytest.mark.gen_test
async def test_a_token_authenticates_after_connecting(connect):
    client = await connect(token="ann")
    assert await whoami(client) == "ann"
    assert not client.refresher.running  # it never expires


@pytest.mark.gen_test
async def test_a_refused_token_fails_connect_with_what_happened_and_closes_the_socket(ws_url, gateway):
    client = Client(ws_url, token="nobody")
    with pytest.raises(RemoteError) as refused:
        await client.connect()
    assert str(refused.value) == "UNAUTHENTICATED: the token was refused"
    with pytest.raises(ConnectionClosed):
        await client.ping()
    await wait_until(lambda: gateway.hub.session_count == 0, 5)  # the client closed its socket


@pytest.mark.gen_test
async def test_get_token_is_asked_ahead_of_the_expiry_and_the_connection_outlives_it(connect):
    deadline = time.time() + 1.0
    asked: list[float] = []

    async def get_token() -> str:
        asked.append(time.time())
        return f"ann@{deadline if len(asked) == 1 else time.time() + 30}"

    kept = await connect(get_token=get_token, refresh_ahead=0.5)
    twin = await connect(token=f"ann@{deadline}")
    assert await close_code(twin) == 4003  # the first deadline has passed
    assert len(asked) == 2 and asked[1] < deadline  # refreshed before it
    assert await whoami(kept) == "ann"
    assert kept.refresher.running  # the next refresh is planned


@pytest.mark.gen_test
async def test_a_fixed_token_is_never_sent_again_and_its_connection_expires(connect, caplog):
    caplog.set_level(logging.WARNING, logger="drizzle_gateway.client")
    client = await connect(token=f"ann@{time.time() + 0.5}", refresh_ahead=0.3)
    assert not client.refresher.running  # nothing fresh to send
    assert await close_code(client) == 4003
    assert caplog.records == []


@pytest.mark.gen_test
async def test_reconnect_asks_get_token_again(connect):
    tokens = iter(["ann", "ann"])
    client = await connect(get_token=lambda: next(tokens))
    await client.reconnect()
    assert await whoami(client) == "ann"
    with pytest.raises(StopIteration):  # both were used: one per connect
        next(tokens)


@pytest.mark.gen_test
async def test_a_refresh_the_gateway_refuses_leaves_the_connection_to_expire(connect, caplog):
    caplog.set_level(logging.WARNING, logger="drizzle_gateway.client")
    deadline = time.time() + 0.6
    tokens = iter([f"ann@{deadline}"])
    client = await connect(get_token=lambda: next(tokens, f"bob@{time.time() + 30}"), refresh_ahead=0.3)
    assert await close_code(client) == 4003
    assert time.time() >= deadline - 0.05
    refusals = [r.getMessage() for r in caplog.records if r.getMessage().startswith("token refresh failed")]
    assert refusals and refusals[0].startswith("token refresh failed (FORBIDDEN: the token names another user")


@pytest.mark.gen_test
async def test_the_test_client_takes_a_token_too(gateway):
    async with TestClient(gateway, token="ann") as client:
        assert await whoami(client) == "ann"
    with pytest.raises(RemoteError) as refused:
        await TestClient(gateway, token="nobody").connect()
    assert str(refused.value) == "UNAUTHENTICATED: the token was refused"
