"""The client's address behind trusted proxies: the rule on its own, then over real sockets.

The real-socket tests bind each client's socket to a loopback address of its
own (127.0.0.1 plays the trusted proxy, 127.0.0.2 an untrusted client that
connects directly) and watch the auth throttle, which counts failed
attempts per client address. tests/test_behind_nginx.py runs the same
through a real nginx.
"""

from __future__ import annotations

import time

import pytest

from drizzle_gateway import Gateway
from drizzle_gateway.runtime.auth import AuthThrottle, Credentials, presents_credentials
from drizzle_gateway.transport.client_address import TrustedProxies, forwarded_for, parse_node
from tests.support.handshakes import WRONG_TOKEN, handshake_status

PROXY = "127.0.0.1"
TRUSTED = TrustedProxies(["127.0.0.1", "10.0.0.0/8", "fd00::/8"])


# -- the rule ---------------------------------------------------------------------------


def test_without_trusted_proxies_the_address_is_the_peer_whatever_the_header_says():
    assert TrustedProxies().resolve("127.0.0.1", ["198.51.100.7"]) == "127.0.0.1"


def test_an_untrusted_peer_is_its_own_address_whatever_it_forwards():
    assert TRUSTED.resolve("203.0.113.9", ["198.51.100.7"]) == "203.0.113.9"
    assert TRUSTED.resolve("::ffff:203.0.113.9", ["198.51.100.7"]) == "::ffff:203.0.113.9"  # as the socket said


@pytest.mark.parametrize(("chain", "client"), [
    (["198.51.100.7"], "198.51.100.7"),  # one proxy
    (["198.51.100.7, 10.0.0.2"], "198.51.100.7"),  # two proxies: the trusted hop is skipped
    (["6.6.6.6, 198.51.100.7"], "198.51.100.7"),  # the client wrote 6.6.6.6 itself: never reached
    (["10.9.9.9, 198.51.100.7"], "198.51.100.7"),  # nor a trusted address it claims to come through
    (["6.6.6.6", "198.51.100.7, 10.0.0.2"], "198.51.100.7"),  # header lines join in order
    (["10.0.0.3, 10.0.0.2"], "10.0.0.3"),  # every hop trusted: the farthest
    ([], PROXY),  # the proxy forwarded nothing: the request is its own
    ([""], PROXY),
    (["6.6.6.6, not-an-address, 10.0.0.2"], "10.0.0.2"),  # a hop that is no address: the nearest trusted hop
    (["198.51.100.7:5678"], "198.51.100.7"),  # ports go
    (["[2001:db8::7]:443"], "2001:db8::7"),
    (["2001:db8::7"], "2001:db8::7"),
    (["::ffff:198.51.100.7"], "198.51.100.7"),  # IPv4-mapped is IPv4
    (["198.51.100.7, ::ffff:10.0.0.2"], "198.51.100.7"),
    (["fe80::7%eth0"], "fe80::7"),  # a zone is no part of who the client is (nor a way to new throttle buckets)
    (['fe80::7%1 "<b>'], "fe80::7"),
])
def test_the_client_is_the_rightmost_hop_that_is_not_a_trusted_proxy(chain, client):
    assert TRUSTED.resolve(PROXY, chain) == client


def test_an_ipv6_proxy_network_is_trusted():
    assert TRUSTED.resolve("fd00::5", ["198.51.100.7"]) == "198.51.100.7"
    assert TRUSTED.resolve("fe80::5", ["198.51.100.7"]) == "fe80::5"


@pytest.mark.parametrize(("header", "nodes"), [
    ('for=198.51.100.7;proto=https;by=10.0.0.2', ["198.51.100.7"]),
    ('for=6.6.6.6, For="198.51.100.7:80"', ["6.6.6.6", '"198.51.100.7:80"']),
    ('for="[2001:db8::7]:4711";proto=http', ['"[2001:db8::7]:4711"']),
    ('proto=http;by=x', [""]),  # an element without for=
    ('for="a;b,c", for=1.2.3.4', ['"a;b,c"', "1.2.3.4"]),  # separators inside quotes
])
def test_forwarded_elements_give_their_for_node(header, nodes):
    assert list(forwarded_for([header])) == nodes


def test_the_forwarded_header_walks_the_same_way():
    proxies = TrustedProxies(["127.0.0.1", "10.0.0.0/8"], header="forwarded")
    assert proxies.header == "Forwarded"
    assert proxies.resolve(PROXY, ['for=6.6.6.6, for="[2001:db8::7]:4711";proto=https, for=10.0.0.2']) == "2001:db8::7"
    assert proxies.resolve(PROXY, ['for=6.6.6.6, for="_hidden", for=10.0.0.2']) == "10.0.0.2"
    assert proxies.resolve(PROXY, ["for=unknown"]) == PROXY


def test_a_hostile_forwarded_header_is_read_in_one_pass():
    """Escaped quotes that never close, 60 KB of them (about Tornado's header limit), take milliseconds."""
    proxies = TrustedProxies(["127.0.0.1"], header="Forwarded")
    hostile = 'for="' + '\\"' * 30_000 + ", for=198.51.100.7"
    began = time.perf_counter()
    assert proxies.resolve(PROXY, [hostile]) == "198.51.100.7"  # the unclosed quote stays in the client's element
    assert time.perf_counter() - began < 1.0
    assert proxies.resolve(PROXY, ["for=6.6.6.6, " * 5_000 + "for=198.51.100.7"]) == "198.51.100.7"


@pytest.mark.parametrize("forged", [
    'for=6.6.6.6;x="',  # a quote that never closes
    'for="6.6.6.6\\"',  # one whose closing quote is escaped
    'for=6.6.6.6;x="\\\\"\\"',  # escaped backslashes, then an escaped quote
])
def test_a_quote_a_client_leaves_open_cannot_swallow_what_an_appending_proxy_adds(forged):
    """A proxy that appends its element to the client's ``Forwarded`` line: the client's address is the appended one."""
    proxies = TrustedProxies(["127.0.0.1"], header="Forwarded")
    assert proxies.resolve(PROXY, [f"{forged}, for=198.51.100.7"]) == "198.51.100.7"
    assert proxies.resolve(PROXY, [f"{forged}, for=198.51.100.7;proto=https, for=127.0.0.1"]) == "198.51.100.7"


@pytest.mark.parametrize("node", ["unknown", "_hidden", "", "1.2.3", "[::1", "example.com"])
def test_what_is_not_an_address_is_no_node(node):
    assert parse_node(node) is None


def test_a_mistyped_proxy_or_header_is_refused_with_what_is_expected():
    with pytest.raises(ValueError, match="an IP address or a network such as 10.0.0.0/8, got 'proxy.local'"):
        TrustedProxies(["proxy.local"])
    with pytest.raises(ValueError, match="one of X-Forwarded-For, Forwarded, got 'X-Real-IP'"):
        TrustedProxies(["10.0.0.1"], header="X-Real-IP")
    assert [str(n) for n in TrustedProxies("10.0.0.1").networks] == ["10.0.0.1/32"]  # one string is one proxy


def test_a_gateway_trusts_no_proxy_unless_told():
    assert not Gateway().trusted_proxies
    assert Gateway(trusted_proxies=["10.0.0.0/8"]).trusted_proxies.trusts(parse_node("10.1.2.3"))


# -- over real sockets: the throttle counts the client, not the proxy ---------------------


class TestOverRealSockets:
    """127.0.0.1 is a trusted proxy; a throttle of one failed attempt per address; a hook that refuses everyone."""

    @pytest.fixture
    def seen(self) -> list[tuple[str, str | None]]:
        """(client_address, request.remote_ip) of each attempt the hook was asked about."""
        return []

    @pytest.fixture
    def throttle(self) -> AuthThrottle:
        return AuthThrottle(rate=0.001, burst=1)

    @pytest.fixture
    def gateway_options(self, gateway_options, seen, throttle) -> dict:
        def refuse(credentials: Credentials) -> None:
            if presents_credentials(credentials):
                seen.append((credentials.client_address, credentials.request.remote_ip))

        return {"authenticate": refuse, "auth_throttle": throttle, "trusted_proxies": [PROXY], **gateway_options}

    @pytest.mark.gen_test
    async def test_clients_behind_the_trusted_proxy_each_have_their_own_bucket(self, ws_url, seen, throttle):
        first = {**WRONG_TOKEN, "X-Forwarded-For": "198.51.100.7"}
        assert [await handshake_status(ws_url, first, PROXY) for _ in range(2)] == [101, 429]
        assert await handshake_status(ws_url, {**WRONG_TOKEN, "X-Forwarded-For": "198.51.100.8"}, PROXY) == 101
        assert seen == [("198.51.100.7", "198.51.100.7"), ("198.51.100.8", "198.51.100.8")]
        assert set(throttle._buckets) == {"198.51.100.7", "198.51.100.8"}

    @pytest.mark.gen_test
    async def test_a_client_spoofing_through_the_proxy_is_counted_at_its_own_address(self, ws_url, seen):
        spoofs = [{**WRONG_TOKEN, "X-Forwarded-For": f"6.6.6.{n}, 198.51.100.7"} for n in range(2)]
        assert [await handshake_status(ws_url, spoof, PROXY) for spoof in spoofs] == [101, 429]
        assert seen == [("198.51.100.7", "198.51.100.7")]

    @pytest.mark.gen_test
    async def test_a_direct_client_gains_nothing_by_forwarding_addresses_itself(self, ws_url, seen, throttle):
        spoofs = [{**WRONG_TOKEN, "X-Forwarded-For": f"198.51.100.{n}"} for n in range(3)]
        assert [await handshake_status(ws_url, spoof, "127.0.0.2") for spoof in spoofs] == [101, 429, 429]
        assert seen == [("127.0.0.2", "127.0.0.2")]
        assert set(throttle._buckets) == {"127.0.0.2"}

    @pytest.mark.gen_test
    @pytest.mark.gateway_options(forwarded_header="Forwarded")
    async def test_only_the_chosen_header_is_read(self, ws_url, seen):
        both = {**WRONG_TOKEN, "X-Forwarded-For": "6.6.6.6", "Forwarded": 'for="198.51.100.7:1234";proto=http'}
        assert await handshake_status(ws_url, both, PROXY) == 101
        assert seen == [("198.51.100.7", "198.51.100.7")]
