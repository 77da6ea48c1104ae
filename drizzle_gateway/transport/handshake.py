"""`HandshakePolicy`: which ``Host`` headers and browser origins a gateway's websocket handshake accepts."""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlparse, urlsplit

from tornado.httputil import HTTPServerRequest


class HandshakePolicy:
    """The Host and Origin checks of one gateway, fixed when it is built.

    ``allowed_hosts`` (like Django's ``ALLOWED_HOSTS``: ``"example.com"``,
    ``".example.com"`` for it and its subdomains, ``"*"``; None accepts any
    Host) shuts DNS rebinding. ``allowed_origins`` lists the browser origins
    allowed besides the gateway's own host; ``"*"`` allows any.
    """

    def __init__(self, allowed_origins: Iterable[str] = (), allowed_hosts: Iterable[str] | None = None) -> None:
        self.allowed_origins = frozenset(allowed_origins)
        self.allowed_hosts = (frozenset(host.lower().strip("[]") for host in allowed_hosts)
                              if allowed_hosts is not None else None)

    def allows_host(self, request: HTTPServerRequest) -> bool:
        """True when ``allowed_hosts`` is None or names the request's ``Host`` (port ignored)."""
        if self.allowed_hosts is None:
            return True
        try:
            host = (urlsplit("//" + request.headers.get("Host", "")).hostname or "").rstrip(".")
        except ValueError:
            return False
        if not host:
            return False
        for allowed in self.allowed_hosts:
            if allowed == "*" or host == allowed or (allowed.startswith(".") and
                                                      (host == allowed[1:] or host.endswith(allowed))):
                return True
        return False

    def allows_origin(self, origin: str, request: HTTPServerRequest) -> bool:
        """True for same-host origins and those in ``allowed_origins``."""
        if "*" in self.allowed_origins or origin in self.allowed_origins:
            return True
        return urlparse(origin).netloc.lower() == request.headers.get("Host", "").lower()
