"""Credentials stay out of the log lines the gateway causes."""

from __future__ import annotations

import asyncio
import logging

import pytest
from tornado.websocket import websocket_connect

from drizzle_gateway.client import Client, RemoteError
from drizzle_gateway.runtime.auth import Credentials
from drizzle_gateway.transport.redaction import RedactCredentials, install, redact
from tests.support.ports import free_port


@pytest.fixture
def all_logs(caplog):
    """Every record at INFO and above, Tornado's access log included."""
    caplog.set_level(logging.INFO)
    return lambda: [record.getMessage() for record in caplog.records]


@pytest.mark.gen_test
async def test_handshake_tokens_are_redacted_from_the_access_log(gateway, ws_url, all_logs):
    async with Client(ws_url + "?room=lobby&token=s3cret-token") as client:
        assert await client.ping() == "pong"
    lines = all_logs()
    assert any(line.startswith("101 GET /ws?room=[redacted]&token=[redacted] (") for line in lines), lines
    assert not [line for line in lines if "s3cret" in line]


QUERIES = {  # the query a client sends -> what the access log shows of it
    **{f"?{name}=s3cret-{name}": f"?{name}=[redacted]"
       for name in ("token", "access_token", "password", "secret", "api_key", "session")},  # the names docs list
    "?access-token=s3cret-dash": "?access-token=[redacted]",
    "?t=s3cret-short": "?t=[redacted]",
    "?%74oken=s3cret-encoded": "?%74oken=[redacted]",
    "?room=lobby&s3cret-bare": "?room=[redacted]&[redacted]",
    "?s3cret-alone": "?[redacted]",
    "?token=ab(s3cret-in-parens)cd": "?token=[redacted]",  # browsers do not percent-encode ( and ) in a query
}


@pytest.mark.gen_test
async def test_the_access_log_keeps_query_names_never_values(gateway, ws_url, all_logs):
    for query in QUERIES:
        ws = await websocket_connect(ws_url + query)
        ws.close()
    lines = [line for line in all_logs() if line.startswith("101 GET /ws")]
    assert [line.split(" (")[0] for line in lines] == [f"101 GET /ws{shown}" for shown in QUERIES.values()]
    assert not [line for line in all_logs() if "s3cret" in line]


async def raw_get(port: int, target: str) -> bytes:
    """Send ``GET target`` as it is (no client library to encode it); the response's head."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
    try:
        return await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    finally:
        writer.close()


@pytest.mark.gen_test
async def test_url_user_info_is_redacted_from_the_access_log(gateway, http_server, http_port, all_logs):
    head = await raw_get(http_port, f"http://ann:s3cret-pw@127.0.0.1:{http_port}/nowhere?key=s3cret-key")
    assert head.startswith(b"HTTP/1.1 404")
    lines = [line for line in all_logs() if line.startswith("404 GET")]
    assert lines and lines[0].startswith(f"404 GET http://[redacted]@127.0.0.1:{http_port}/nowhere?key=[redacted] (")
    assert not [line for line in all_logs() if "s3cret" in line]


@pytest.mark.gen_test
@pytest.mark.parametrize("inside", ["'", '"', ";", "#", "(", "<", "|", "%22", "="])
async def test_no_character_a_raw_client_sends_ends_a_value_early(gateway, http_server, http_port, all_logs, inside):
    """Tornado reads ``?token=ab;cd`` (or ``ab#cd``, ``ab'cd``) as one value: none of its tail is logged."""
    head = await raw_get(http_port, f"/nowhere?token=s3cret{inside}s3cret&room=x{inside}s3cret")
    assert head.startswith(b"HTTP/1.1 404")
    lines = [line for line in all_logs() if line.startswith("404 GET")]
    assert lines and lines[0].startswith("404 GET /nowhere?token=[redacted]&room=[redacted] ("), lines
    assert not [line for line in all_logs() if "s3cret" in line]


def refuse(credentials: Credentials):
    """An ``authenticate`` hook that refuses by raising, naming the token it was given."""
    raise KeyError(credentials.token)


@pytest.mark.gen_test
@pytest.mark.gateway_options(authenticate=refuse)
async def test_a_hook_refusing_by_raising_is_logged_by_type_only(test_client, all_logs):
    client = await test_client()
    with pytest.raises(RemoteError) as refused:
        await client.request({"action": "__auth__", "data": {"token": "s3cret-token"}})
    assert refused.value.code == "UNAUTHENTICATED"
    assert "authentication refused: the hook raised KeyError" in all_logs()
    assert not [line for line in all_logs() if "s3cret" in line]


@pytest.mark.gen_test
async def test_redis_broker_logs_its_url_without_credentials(all_logs):
    redis_broker = pytest.importorskip("drizzle_gateway.brokers.redis.broker")
    port = free_port()  # nothing listens: the broker logs the outage with its URL
    broker = redis_broker.RedisBroker(f"redis://user:p@ss@127.0.0.1:{port}/0?password=pw2", timeout=0.5)
    try:
        await broker.subscribe("chat.lobby", lambda channel, data: None)
    finally:
        await broker.close()
    outage = [line for line in all_logs() if "is unreachable" in line]
    assert outage and outage[0].startswith(f"redis at redis://127.0.0.1:{port}/0 is unreachable"), outage
    assert repr(broker) == f"RedisBroker('redis://127.0.0.1:{port}/0', prefix='drizzle:')"
    assert not [line for line in all_logs() if "p@ss" in line or "ss@" in line or "pw2" in line]


@pytest.mark.parametrize(("line", "expected"), [
    ("101 GET /ws?token=abc (127.0.0.1) 0.5ms", "101 GET /ws?token=[redacted] (127.0.0.1) 0.5ms"),
    ("GET /ws?a=1&Access_Token=x&b=2", "GET /ws?a=[redacted]&Access_Token=[redacted]&b=[redacted]"),
    ("uri='/ws?password=hunter2' next", "uri='/ws?password=[redacted] next"),  # the closing quote goes too
    ("connecting to redis://user:p@ss@host:6379/0", "connecting to redis://[redacted]@host:6379/0"),
    ("GET /ws?room=lobby (127.0.0.1)", "GET /ws?room=[redacted] (127.0.0.1)"),
    ("GET /ws?%74oken=x&t=y;sid=z#top", "GET /ws?%74oken=[redacted]&t=[redacted]"),  # Tornado reads t=y;sid=z#top
    ("redis://:pa'ss\"@host/0", "redis://[redacted]@host/0"),
    ("'redis://host/0' mailed ada@example.com", "'redis://host/0' mailed ada@example.com"),
    ("GET /ws?abc123 (127.0.0.1)", "GET /ws?[redacted] (127.0.0.1)"),
    ("GET /ws (127.0.0.1) what? a & b", "GET /ws (127.0.0.1) what? a & b"),
    ("ada@example.com wrote", "ada@example.com wrote"),
    ("GET /ws;jsessionid=abc (127.0.0.1)", "GET /ws;jsessionid=[redacted] (127.0.0.1)"),  # no ? nor &
    ("form body name=ann&token=abc", "form body name=ann&token=[redacted]"),  # no ? nor ;
    ("REDIS://user:pw@host:6379", "REDIS://[redacted]@host:6379"),
])
def test_redact(line, expected):
    assert redact(line) == expected


@pytest.fixture
def fresh_loggers():
    """Two loggers no other code filters; their filters are removed afterwards, so every run starts without any."""
    names = ("tests.redaction.a", "tests.redaction.b")
    yield names
    for name in names:
        for installed in logging.getLogger(name).filters[:]:
            logging.getLogger(name).removeFilter(installed)


def test_install_filters_each_named_logger_once_and_keeps_every_record(fresh_loggers, caplog):
    names = fresh_loggers
    assert [logging.getLogger(name).filters for name in names] == [[], []]
    install(names)
    install(names)  # again: still one filter each
    for name in names:
        assert [type(f) for f in logging.getLogger(name).filters] == [RedactCredentials]
    caplog.set_level(logging.INFO)
    logging.getLogger(names[1]).info("%s GET %s", 101, "/ws?token=s3cret")
    logging.getLogger(names[1]).info("no credentials here: %d", 7)
    assert [(r.name, r.getMessage(), r.args) for r in caplog.records] == [
        (names[1], "101 GET /ws?token=[redacted]", None),  # the message is rewritten without its arguments
        (names[1], "no credentials here: 7", (7,)),  # a record without credentials is left as it was
    ]
