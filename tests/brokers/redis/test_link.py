"""The Redis broker's two connections (`Link`): its URL for log lines, bounded calls, the outage log.

Pure unit tests for what needs no Redis (the URL without credentials,
the once-per-outage log and its end, `bounded`); a redis-server of the
module's own for the clients `open` makes (a socket timeout, no retries)
and for what `reset_publisher` and `close` do to their connections.
"""

from __future__ import annotations

import asyncio
import logging

import pytest
from redis.asyncio import Redis

from drizzle_gateway.brokers.redis.link import REDIS_ERRORS, Link
from tests.support.polling import eventually
from tests.support.ports import free_port

TIMEOUT = 0.5


def make_link(url: str = "redis://127.0.0.1:6379/0", timeout: float = TIMEOUT) -> Link:
    """A link with a short timeout and backoff, not opened."""
    return Link(url, timeout=timeout, max_pending=7, reconnect_min=0.01, reconnect_max=0.05)


def outage_lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "drizzle_gateway" and "unreachable" in r.getMessage()]


def back_lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "drizzle_gateway" and "is back after" in r.getMessage()]


@pytest.mark.parametrize("url, where", [
    ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"),
    ("redis://ada:s3cret@cache.internal:6380/2", "redis://cache.internal:6380/2"),
    ("rediss://:s3cret@cache.internal/0?password=other&ssl_cert_reqs=none", "rediss://cache.internal/0"),
    ("redis://user@host", "redis://host"),
])
def test_where_is_the_url_without_user_password_or_query(url: str, where: str) -> None:
    assert make_link(url).where() == where


@pytest.mark.gen_test(timeout=10)
async def test_an_outage_is_logged_once_and_its_end_once_with_what_it_cost(caplog) -> None:
    caplog.set_level(logging.DEBUG, logger="drizzle_gateway")
    link = make_link("redis://ada:s3cret@127.0.0.1:6390/0")
    link.up.set()
    link.went_down(ConnectionError("connection refused"))
    assert not link.up.is_set() and link.outage_since is not None
    started = link.outage_since
    link.note_outage(OSError("still refused"))  # the sender's failed batch, in the same outage
    link.went_down(TimeoutError())
    [line] = outage_lines(caplog)
    assert line.levelno == logging.ERROR
    assert "redis://127.0.0.1:6390/0" in line.getMessage() and "s3cret" not in line.getMessage()
    assert "ConnectionError: connection refused" in line.getMessage() and "7 publishes" in line.getMessage()
    assert link.outage_since == started

    link.dropped = 3  # as the sender's full outbox counts them
    link.came_up(2, 5)
    [back] = back_lines(caplog)
    assert back.levelno == logging.WARNING
    assert "2 channels re-subscribed, 5 queued publishes to send, 3 dropped" in back.getMessage()
    assert "s3cret" not in back.getMessage()
    assert (link.outage_since, link.dropped, link.up.is_set()) == (None, 0, True)
    link.came_up(2, 0)  # in sync again: nothing more to say
    assert len(back_lines(caplog)) == 1

    link.went_down(ConnectionError("refused again"))  # the next outage is logged again
    assert len(outage_lines(caplog)) == 2


@pytest.mark.gen_test(timeout=10)
async def test_a_link_coming_up_without_an_outage_logs_nothing(caplog) -> None:
    caplog.set_level(logging.DEBUG, logger="drizzle_gateway")
    link = make_link()
    link.came_up(4, 0)
    assert link.up.is_set() and link.outage_since is None
    assert [r for r in caplog.records if r.name == "drizzle_gateway"] == []


@pytest.mark.gen_test(timeout=10)
async def test_a_closed_link_logs_no_outage(caplog) -> None:
    caplog.set_level(logging.DEBUG, logger="drizzle_gateway")
    link = make_link()
    link.closed = True
    link.went_down(ConnectionError("closed under us"))
    assert link.outage_since is None and outage_lines(caplog) == []


@pytest.mark.gen_test(timeout=10)
async def test_an_unexpected_error_is_kept_at_debug_with_its_traceback(caplog) -> None:
    caplog.set_level(logging.DEBUG, logger="drizzle_gateway")
    link = make_link()
    link.note_outage(KeyError("odd"))
    [debug] = [r for r in caplog.records if r.name == "drizzle_gateway" and r.levelno == logging.DEBUG]
    assert debug.exc_info is not None and debug.exc_info[1] is not None
    link.note_outage(ConnectionError("expected"))  # a Redis error is no surprise
    assert len([r for r in caplog.records if r.levelno == logging.DEBUG]) == 1


@pytest.mark.gen_test(timeout=10)
async def test_bounded_gives_the_answer_or_a_timeout_error_after_timeout() -> None:
    link = make_link(timeout=0.2)

    async def answer() -> str:
        return "PONG"

    assert await link.bounded(answer()) == "PONG"
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(TimeoutError) as timed_out:
        await link.bounded(loop.create_future())  # never answered
    assert 0.2 <= loop.time() - started < 2
    assert isinstance(timed_out.value, REDIS_ERRORS)


@pytest.mark.gen_test(timeout=20)
async def test_the_clients_fail_fast_on_an_unreachable_or_frozen_redis(redis_server) -> None:
    """No retries inside redis-py, and a socket timeout: a frozen Redis costs one ``timeout``, not several."""
    nowhere = make_link(f"redis://127.0.0.1:{free_port()}/0")
    nowhere.open()  # connects lazily: nothing to reach yet
    try:
        for client in (nowhere.publisher, nowhere.subscriber):
            assert client is not None
            with pytest.raises(REDIS_ERRORS):
                await client.ping()
    finally:
        await nowhere.close()

    link = make_link(redis_server.url)
    link.open()
    assert link.publisher is not None and link.subscriber is not None
    try:
        assert await link.publisher.ping() and await link.subscriber.ping()
        loop = asyncio.get_running_loop()
        redis_server.freeze()
        try:
            for client in (link.publisher, link.subscriber):
                started = loop.time()
                with pytest.raises(REDIS_ERRORS):
                    await asyncio.wait_for(client.ping(), 10)  # not `bounded`: the client's own timeout
                assert loop.time() - started < 2 * TIMEOUT  # one retry would take two
        finally:
            redis_server.thaw()
    finally:
        await link.close()


async def client_ids(observer: Redis) -> set[int]:
    """The ids of the connections the server has open."""
    return {int(client["id"]) for client in await observer.client_list()}


@pytest.mark.gen_test(timeout=20)
async def test_reset_publisher_drops_its_connections_and_close_closes_both(redis_server) -> None:
    observer = Redis.from_url(redis_server.url)
    link = make_link(redis_server.url)
    link.open()
    assert link.publisher is not None and link.subscriber is not None
    try:
        publisher, subscriber = await link.publisher.client_id(), await link.subscriber.client_id()
        assert {publisher, subscriber} <= await client_ids(observer)

        await link.reset_publisher()

        async def publisher_gone() -> bool:
            return publisher not in await client_ids(observer)

        assert await eventually(publisher_gone, 5)
        assert subscriber in await client_ids(observer)  # the subscriber connection is left alone
        again = await link.publisher.client_id()  # a fresh connection on the next call
        assert again != publisher

        await link.close()

        async def both_gone() -> bool:
            return not {again, subscriber} & await client_ids(observer)

        assert await eventually(both_gone, 5)
    finally:
        await link.close()
        await observer.aclose()


@pytest.mark.gen_test(timeout=10)
async def test_close_of_a_link_never_opened_does_nothing() -> None:
    link = make_link(f"redis://127.0.0.1:{free_port()}/0")
    await link.close()
    assert link.publisher is None and link.subscriber is None
