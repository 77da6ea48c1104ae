"""Test a gateway without a socket: `TestClient` runs the real request and publish paths in process.

::

    async def test_create_todo():
        gateway = Gateway([Todos], [todo_events])
        async with TestClient(gateway) as client:
            await client.subscribe("todos.changed")
            todo = await client.call("todos", "create", {"title": "milk"}, fields=["id", "title"])
            assert (await client.next_event()).data["id"] == todo["id"]
            with pytest.raises(RemoteError) as refused:
                await client.call("todos", "create", {})
            assert refused.value.code == "INVALID_DATA"

`TestClient` has the methods of `drizzle_gateway.client.Client` (``call``,
``stream``, ``subscribe``, ``unsubscribe``, ``publish``, ``schema``, ``ping``,
``next_event``, ``events``, ``reconnect``...) and raises the same
`RemoteError` and `ConnectionClosed`. Each request is encoded as JSON and
read by the gateway's own parser, every reply and event is the frame a
socket would carry, read back as JSON, so what a test sees is what a
websocket client would see. What it leaves out is the transport: HTTP
handshake checks (Host, Origin), frame size limits, compression, pings and
slow-consumer closes. Test those with a real server.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from tornado.httputil import HTTPHeaders, HTTPServerRequest, RequestStartLine

from .client import BaseClient, ConnectionClosed, Event, Position, RemoteError
from .client_tokens import GetToken
from .runtime.peer import PeerState
from .runtime.session import Session
from .wire.dialect import CloseCode, decode
from .wire.errors import ActionError, ErrorCode
from .wire.frame import Frame

if TYPE_CHECKING:
    from .gateway import Gateway

__all__ = ["ConnectionClosed", "Event", "Position", "RemoteError", "TestClient"]


class _InProcess:
    """The `Peer` under a `TestClient`'s session: frames go straight to the client."""

    def __init__(self, client: TestClient, request: HTTPServerRequest) -> None:
        self.client = client
        self.request = request
        self.address: str = request.remote_ip or ""
        self.session: Session | None = None
        self.state = PeerState.CONNECTING

    def send_frame(self, frame: str | Frame) -> bool:
        if self.state is not PeerState.CLOSED:
            self.client._receive(self.client.loads(frame.text if isinstance(frame, Frame) else frame))
        return False  # an in-process peer reads everything at once: never congested

    async def drained(self) -> None:
        return None

    async def released(self) -> None:
        return None

    def close(self, code: int | None = None, reason: str | None = None) -> None:
        """The server closes the connection (shutdown, auth timeout): the client sees it end."""
        self.end(CloseCode.NORMAL if code is None else code, reason)

    def end(self, code: int | None, reason: str | None) -> None:
        if self.state is PeerState.CLOSED:
            return
        self.state = PeerState.CLOSED
        if self.session is not None:
            self.session.end()
        self.client._ended_with(code, reason)


class TestClient(BaseClient):
    """An in-process client of ``gateway``: the methods of `Client`, the real request path, no socket.

    ``headers`` and ``query`` make the handshake the gateway's ``authenticate``
    hook sees (``Authorization``, cookies, ``?token=``); ``remote_ip`` is
    the client address `AuthThrottle` counts. ``loads`` reads each frame
    (e.g. ``functools.partial(json.loads, parse_float=Decimal)`` to keep
    exact digits); ``timeout``, ``retries``, ``max_retry_delay``, ``token``,
    ``get_token``, ``refresh_ahead``, ``auto_reconnect`` and
    ``max_reconnect_delay`` are `Client`'s. Use it with ``async with``,
    inside the event loop that serves the gateway.
    """

    __test__ = False  # not a pytest test class

    def __init__(
        self,
        gateway: Gateway,
        *,
        headers: dict[str, str] | None = None,
        query: str = "",
        remote_ip: str = "127.0.0.1",
        loads: Callable[[str], Any] = decode,
        timeout: float = 10.0,
        retries: int = 10,
        max_retry_delay: float = 10.0,
        token: str | None = None,
        get_token: GetToken | None = None,
        refresh_ahead: float = 30.0,
        auto_reconnect: bool = False,
        max_reconnect_delay: float = 30.0,
    ) -> None:
        super().__init__(timeout=timeout, retries=retries, max_retry_delay=max_retry_delay, token=token,
                         get_token=get_token, refresh_ahead=refresh_ahead, auto_reconnect=auto_reconnect,
                         max_reconnect_delay=max_reconnect_delay)
        self.gateway = gateway
        self.headers = dict(headers or {})
        self.query = query
        self.remote_ip = remote_ip
        self.loads = loads
        self._link: _InProcess | None = None
        self._reading: asyncio.Future | None = None
        self._raw: asyncio.Future | None = None

    @property
    def session(self) -> Session | None:
        """The gateway's session of this client (None before `connect`)."""
        return self._link.session if self._link is not None else None

    async def connect(self) -> TestClient:
        """Open a session, authenticating from the handshake as a websocket connection would.

        `ConnectionClosed` when the gateway refuses it: shutting down (1001),
        or the client's address failed authentication too often (HTTP 429).
        With ``token`` or ``get_token``, ``__auth__`` follows, as `Client`
        sends it (a refusal closes the session and raises `RemoteError`).
        """
        target = "/ws" + (f"?{self.query}" if self.query else "")
        request = HTTPServerRequest(start_line=RequestStartLine("GET", target, "HTTP/1.1"),
                                    headers=HTTPHeaders({"Host": "testserver", **self.headers}))
        request.remote_ip = self.remote_ip
        link = _InProcess(self, request)
        hub = self.gateway.hub
        session = Session(hub, link)
        if hub.authenticate is not None and not hub.closing:
            try:
                await session.authenticate()
            except ActionError as exc:
                if exc.code == ErrorCode.RATE_LIMITED:
                    raise ConnectionClosed(None, f"HTTP 429: {exc.message}") from None
        if hub.closing:
            link.state = PeerState.CLOSED
            raise ConnectionClosed(*hub.farewell)
        self._link, link.session, self._reading = link, session, None
        link.state = PeerState.OPEN
        self._started()
        session.start()
        await self._sign_in()
        return self

    async def __aenter__(self) -> TestClient:
        return await self.connect()

    async def close(self) -> None:
        """End the session: its requests are cancelled and its subscriptions dropped."""
        self._ended_for_good = True
        self._stop_relinking()
        await self._close_link()

    async def _close_link(self) -> None:
        if self._link is not None:
            self._link.end(CloseCode.NORMAL, None)
        await asyncio.sleep(0)  # let the cancelled requests of the session unwind

    async def _send(self, text: str) -> None:
        """Hand one frame to the session; while it holds reading back (``max_in_flight``), wait as TCP would."""
        while self._reading is not None and not self._reading.done():
            await self._reading
        assert self._link is not None and self._link.session is not None
        if self._link.state is PeerState.CLOSED:
            raise ConnectionClosed(self.close_code, self.close_reason)
        self._reading = self._link.session.receive(text)

    async def exchange(self, text: str) -> Any:
        """Send one raw text frame, well-formed or not, and return the next reply or error frame, whole.

        For testing what a client that builds its own frames sees (a missing
        ``request_id``, a wrong type); events that arrive meanwhile stay queued.
        """
        if self._gone is None:
            raise RuntimeError("not connected; use 'async with TestClient(gateway)' or connect()")
        self._raw = asyncio.get_running_loop().create_future()
        try:
            await self._send(text)
            return await asyncio.wait_for(self._raw, self.timeout)
        finally:
            self._raw = None

    def _receive(self, frame: Any) -> None:
        is_event = isinstance(frame, dict) and "topic" in frame and "request_id" not in frame
        raw = self._raw
        if not is_event and raw is not None and not raw.done() and frame.get("request_id") not in self._pending:
            raw.set_result(frame)
            return
        super()._receive(frame)

    def events_now(self) -> list[Event]:
        """The events received and not yet read, without waiting."""
        events = []
        while not self._events.empty():
            event = self._events.get_nowait()
            if event is None:
                self._events.put_nowait(None)
                break
            events.append(event)
        return events
