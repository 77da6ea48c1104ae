"""`transport.handshake.HandshakePolicy`: which ``Host`` headers and browser origins a websocket handshake may carry.

The policy is checked directly on handshake requests for its edge cases (the
port is ignored in a Host, letters' case and a trailing dot too, IPv6
brackets, a Host that does not parse is refused, not raised), and over real
sockets on a gateway built with ``allowed_origins`` / ``allowed_hosts``: a
refused origin gets 403, a refused Host 400. Which check runs first, and that
both run before the ``authenticate`` hook, is `Connection`'s part
(tests/transport/test_connection.py).
"""

from __future__ import annotations

import pytest
from tornado.httpclient import HTTPClientError, HTTPRequest
from tornado.httputil import HTTPHeaders, HTTPServerRequest, RequestStartLine
from tornado.websocket import websocket_connect

from drizzle_gateway.transport.handshake import HandshakePolicy


def request_with(**headers: str) -> HTTPServerRequest:
    """A websocket handshake's request as the server parses it, with ``headers`` (HTTP/1.0 when it has no Host:
    HTTP/1.1 requires one)."""
    version = "HTTP/1.1" if "Host" in headers else "HTTP/1.0"
    return HTTPServerRequest(start_line=RequestStartLine("GET", "/ws", version), headers=HTTPHeaders(headers))


def host_allowed(policy: HandshakePolicy, host: str | None) -> bool:
    """Whether ``policy`` accepts a handshake whose Host header is ``host`` (None: no Host header)."""
    return policy.allows_host(request_with() if host is None else request_with(Host=host))


# -- the policy, on handshake requests ------------------------------------------------


def test_without_allowed_hosts_any_host_is_allowed():
    policy = HandshakePolicy()
    assert policy.allowed_hosts is None
    for host in ("rebound.attacker.example", "", "[::1", None):
        assert host_allowed(policy, host), host


@pytest.mark.parametrize(("host", "allowed"), [
    ("chat.example.com", True),
    ("chat.example.com:8443", True),  # the port is not part of the check
    ("CHAT.Example.COM", True),
    ("chat.example.com.", True),  # the fully qualified form of the same name
    ("internal.example", True),  # ".internal.example" names it ...
    ("a.b.internal.example:80", True),  # ... and its subdomains
    ("[::1]:8888", True),  # allowed as "[::1]": brackets are not part of the name
    ("10.0.0.1", True),
    ("example.com", False),
    ("chat.example.com.attacker.example", False),
    ("xinternal.example", False),  # a suffix of the name, not a subdomain
    ("10.0.0.10", False),
    ("", False),
    (":8888", False),
    (None, False),
    ("[::1", False),  # does not parse: refused rather than raised
])
def test_allowed_hosts_name_hosts_and_domains(host, allowed):
    policy = HandshakePolicy(allowed_hosts=["Chat.Example.com", ".internal.example", "[::1]", "10.0.0.1"])
    assert host_allowed(policy, host) is allowed


def test_a_star_in_allowed_hosts_allows_any_named_host_but_not_a_missing_one():
    policy = HandshakePolicy(allowed_hosts=["*"])
    assert host_allowed(policy, "anything.example:1")
    assert not host_allowed(policy, "")
    assert not host_allowed(policy, None)


def test_an_empty_allowed_hosts_allows_none():
    assert not host_allowed(HandshakePolicy(allowed_hosts=[]), "localhost")


@pytest.mark.parametrize(("origin", "host", "allowed"), [
    ("http://chat.example:8888", "chat.example:8888", True),
    ("https://Chat.Example:8888", "chat.example:8888", True),  # case does not matter
    ("http://chat.example", "chat.example:8888", False),  # the same host on another port is another origin
    ("http://chat.example.attacker.example", "chat.example", False),
    ("null", "chat.example", False),
    ("https://app.example", "chat.example", True),  # listed in allowed_origins
    ("https://app.example:443", "chat.example", False),  # listed origins match exactly
])
def test_an_origin_is_allowed_when_it_is_the_gateways_own_host_or_listed(origin, host, allowed):
    policy = HandshakePolicy(allowed_origins=["https://app.example"])
    assert policy.allows_origin(origin, request_with(Host=host)) is allowed


def test_a_star_in_allowed_origins_allows_every_origin():
    policy = HandshakePolicy(allowed_origins=["*"])
    assert policy.allows_origin("https://evil.example", request_with(Host="chat.example"))
    assert policy.allows_origin("null", request_with(Host="chat.example"))


def test_the_policy_keeps_what_it_was_given_fixed():
    origins, hosts = ["https://app.example"], ["Chat.Example.com"]
    policy = HandshakePolicy(origins, hosts)
    origins.append("*")
    hosts.append("*")
    assert policy.allowed_origins == frozenset({"https://app.example"})
    assert policy.allowed_hosts == frozenset({"chat.example.com"})


# -- over real sockets: a gateway's allowed_origins and allowed_hosts ------------------


async def handshake(ws_url: str, origin: str | None) -> None:
    headers = {} if origin is None else {"Origin": origin}
    ws = await websocket_connect(HTTPRequest(ws_url, headers=headers))
    ws.close()


@pytest.mark.gen_test
async def test_foreign_origin_is_refused_by_default(ws_url, http_port):
    with pytest.raises(HTTPClientError) as refused:
        await handshake(ws_url, "https://evil.example")
    assert refused.value.code == 403
    await handshake(ws_url, f"http://127.0.0.1:{http_port}")
    await handshake(ws_url, None)  # not a browser: no Origin header


@pytest.mark.gen_test
@pytest.mark.gateway_options(allowed_origins=["https://app.example"])
async def test_allowed_origins(ws_url):
    await handshake(ws_url, "https://app.example")
    with pytest.raises(HTTPClientError):
        await handshake(ws_url, "https://evil.example")


@pytest.mark.gen_test
@pytest.mark.gateway_options(allowed_origins=["*"])
async def test_an_explicit_star_allows_every_origin(ws_url):
    await handshake(ws_url, "https://evil.example")


async def host_handshake(ws_url: str, host: str) -> None:
    ws = await websocket_connect(HTTPRequest(ws_url, headers={"Host": host}))
    ws.close()


@pytest.mark.gen_test
async def test_any_host_is_allowed_by_default(ws_url):
    await host_handshake(ws_url, "rebound.attacker.example")


@pytest.mark.gen_test
@pytest.mark.gateway_options(allowed_hosts=["chat.example.com", ".internal.example", "127.0.0.1"])
async def test_allowed_hosts_refuse_other_host_headers(ws_url, http_port):
    for host in ("chat.example.com", f"chat.example.com:{http_port}", "internal.example", "a.internal.example",
                 f"127.0.0.1:{http_port}"):
        await host_handshake(ws_url, host)
    for host in ("rebound.attacker.example", "chat.example.com.attacker.example", "xinternal.example", ""):
        with pytest.raises(HTTPClientError) as refused:
            await host_handshake(ws_url, host)
        assert refused.value.code == 400, host
