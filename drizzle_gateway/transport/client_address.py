"""The client's address, also behind reverse proxies: forwarded headers are believed from trusted peers only.

A connection's direct peer is the address its socket comes from. Behind a
reverse proxy that is the proxy, and the client's own address travels in a
header the proxy adds: ``X-Forwarded-For`` (each proxy appends the address
it was connected from) or RFC 7239 ``Forwarded`` (``for=`` of each
element). Anyone can send those headers, so `TrustedProxies` reads the one
it is told to read only when the direct peer is a trusted proxy, and then
walks it from right to left, skipping the hops that are trusted proxies
too: the first hop that is not one is the client. What an untrusted client
wrote further left is never reached. Nothing is read from a peer that is
not trusted, and with no trusted proxies (the default) the address is
always the direct peer's.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tornado.httputil import HTTPServerRequest

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

X_FORWARDED_FOR = "X-Forwarded-For"
FORWARDED = "Forwarded"
HEADERS = (X_FORWARDED_FOR, FORWARDED)
"""The headers a gateway can read the client's address from."""

def parse_network(text: str | IPNetwork) -> IPNetwork:
    """An address (``10.0.0.7``, ``::1``) or a network (``10.0.0.0/8``) as a network; ValueError if neither."""
    try:
        return ipaddress.ip_network(text.strip() if isinstance(text, str) else text, strict=False)
    except ValueError:
        raise ValueError(f"a trusted proxy must be an IP address or a network such as 10.0.0.0/8, got {text!r}") \
            from None


def parse_node(text: str) -> IPAddress | None:
    """The IP address of one hop (``1.2.3.4``, ``1.2.3.4:5678``, ``"[2001:db8::1]:80"``), or None.

    IPv4-mapped IPv6 addresses (``::ffff:1.2.3.4``) are the IPv4 address, and
    a zone (``fe80::1%eth0``) is dropped: the address alone names the client.
    ``unknown``, obfuscated identifiers (``_hidden``) and anything else that
    is not an address are None.
    """
    node = text.strip().strip('"').strip()
    if node.startswith("["):
        node = node[1:node.find("]")] if "]" in node else ""
    elif node.count(":") == 1:  # IPv4 with a port
        node = node.split(":", 1)[0]
    node = node.partition("%")[0]
    try:
        address = ipaddress.ip_address(node)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def split_outside_quotes(text: str, separator: str) -> list[str]:
    """``text`` cut at each ``separator`` outside double quotes (where a backslash escapes), in one pass.

    It is read from the right, as a proxy appends: a quote that a client
    left open on the left keeps to the client's part, and never swallows
    what a proxy added after it.
    """
    parts: list[str] = []
    end, quoted = len(text), False
    for at in range(len(text) - 1, -1, -1):
        char = text[at]
        if char == '"':
            if quoted:  # the quote that opens a string, unless an odd run of backslashes escapes it
                run = at
                while run > 0 and text[run - 1] == "\\":
                    run -= 1
                quoted = (at - run) % 2 == 1
            else:
                quoted = True
        elif char == separator and not quoted:
            parts.append(text[at + 1:end])
            end = at
    parts.append(text[:end])
    parts.reverse()
    return parts


def forwarded_for(values: Iterable[str]) -> Iterator[str]:
    """The ``for=`` node of each element of RFC 7239 ``Forwarded`` header lines, in order ("" without one)."""
    for value in values:
        for element in split_outside_quotes(value, ","):
            node = ""
            for pair in split_outside_quotes(element, ";"):
                name, _, raw = pair.partition("=")
                if name.strip().lower() == "for":
                    node = raw.strip()
            yield node


def x_forwarded_for(values: Iterable[str]) -> Iterator[str]:
    """The hops of ``X-Forwarded-For`` header lines, in order."""
    for value in values:
        yield from value.split(",")


class TrustedProxies:
    """Which direct peers may say who the client is, and in which header.

    ``proxies`` are addresses or networks (``"10.0.0.7"``, ``"10.0.0.0/8"``,
    ``"::1"``); ``header`` is ``"X-Forwarded-For"`` (the default) or
    ``"Forwarded"``. Only that header is read: a proxy in front must
    overwrite it or append to it, or a client could write it unchecked.
    """

    def __init__(self, proxies: Iterable[str | IPNetwork] = (), header: str = X_FORWARDED_FOR) -> None:
        if isinstance(proxies, str):
            proxies = [proxies]
        self.networks: tuple[IPNetwork, ...] = tuple(parse_network(proxy) for proxy in proxies)
        canonical = {name.lower(): name for name in HEADERS}
        if header.lower() not in canonical:
            raise ValueError(f"the forwarded header must be one of {', '.join(HEADERS)}, got {header!r}")
        self.header = canonical[header.lower()]

    def __bool__(self) -> bool:
        return bool(self.networks)

    def __repr__(self) -> str:
        return f"TrustedProxies({[str(n) for n in self.networks]!r}, header={self.header!r})"

    def trusts(self, address: IPAddress | None) -> bool:
        """Whether ``address`` is one of the trusted proxies."""
        return address is not None and any(address in network for network in self.networks)

    def resolve(self, peer: str, header_values: Iterable[str]) -> str:
        """The client's address, given the direct ``peer`` and the lines of the forwarded header.

        ``peer`` itself (as it is) unless it is trusted; else the rightmost hop that is
        not a trusted proxy. If every hop is trusted, the leftmost; if a hop
        is not an address, the trusted hop nearest to it (the last one whose
        word can be taken).
        """
        direct = parse_node(peer)
        if direct is None or not self.trusts(direct):
            return peer
        hops = list(forwarded_for(header_values) if self.header == FORWARDED else x_forwarded_for(header_values))
        nearest = direct
        for hop in reversed(hops):
            address = parse_node(hop)
            if address is None:
                break
            if not self.trusts(address):
                return str(address)
            nearest = address
        return str(nearest)

    def client_address(self, request: HTTPServerRequest) -> str:
        """The address of the client that sent ``request`` (its ``remote_ip`` unless that is a trusted proxy)."""
        peer = request.remote_ip or ""
        if not self.networks:
            return peer
        return self.resolve(peer, request.headers.get_list(self.header))
