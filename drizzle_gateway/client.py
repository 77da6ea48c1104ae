"""An asyncio client for drizzle_gateway, for services and for tests.

::

    async with Client("ws://127.0.0.1:8888/ws") as client:
        todo = await client.call("todos", "create", {"title": "milk"}, fields=["id"])
        await client.subscribe("chat.lobby")
        async for event in client.events():
            print(event.topic, event.data)
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from tornado.httpclient import HTTPRequest
from tornado.websocket import WebSocketClientConnection, websocket_connect

from .protocol import SUBPROTOCOL, CloseCode, decode, encode


class RemoteError(Exception):
    """An error frame from the server: ``code``, ``message`` and ``details``."""

    def __init__(self, code: str, message: str, details: Any = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.details = details


class ConnectionClosed(Exception):
    """The websocket closed; ``code`` and ``reason`` are the close frame's."""

    def __init__(self, code: int | None, reason: str | None) -> None:
        super().__init__(f"connection closed ({code}: {reason})")
        self.code = code
        self.reason = reason

    @property
    def should_reconnect(self) -> bool:
        """What the close-code table says: reconnect (with backoff) after this close?"""
        code = CloseCode.ABNORMAL if self.code is None else self.code
        return code in CloseCode.RECONNECT or self.reason == "ping timed out"


@dataclass(frozen=True)
class Event:
    """One published message received on a subscribed topic."""

    topic: str
    data: Any


class Client:
    """A websocket client speaking ``drizzle.v1``; use it with ``async with``."""

    def __init__(self, url: str, *, timeout: float = 10.0, headers: dict[str, str] | None = None) -> None:
        self.url = url
        self.timeout = timeout
        self.headers = headers or {}
        self._ids = itertools.count(1)
        self._pending: dict[Any, asyncio.Future] = {}
        self._events: asyncio.Queue[Event | None] = asyncio.Queue()
        self._ws: WebSocketClientConnection | None = None
        self._reader: asyncio.Task | None = None
        self.close_code: int | None = None
        self.close_reason: str | None = None

    async def connect(self) -> Client:
        """Open the websocket."""
        request = HTTPRequest(self.url, headers=self.headers)
        self._ws = await websocket_connect(request, subprotocols=[SUBPROTOCOL])
        self._reader = asyncio.ensure_future(self._read())
        return self

    async def __aenter__(self) -> Client:
        return await self.connect()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the websocket and stop reading."""
        if self._ws is not None:
            self._ws.close()
        if self._reader is not None:
            try:
                await asyncio.wait_for(self._reader, self.timeout)
            except TimeoutError:
                self._reader.cancel()

    async def _read(self) -> None:
        assert self._ws is not None
        while True:
            text = await self._ws.read_message()
            if text is None:
                break
            frame = decode(text)
            if "topic" in frame and "request_id" not in frame:
                self._events.put_nowait(Event(frame["topic"], frame.get("data")))
                continue
            future = self._pending.pop(frame.get("request_id"), None)
            if future is None or future.done():
                continue
            if "code" in frame:
                future.set_exception(RemoteError(frame["code"], frame.get("error", ""), frame.get("details")))
            else:
                future.set_result(frame.get("data"))
        self.close_code, self.close_reason = self._ws.close_code, self._ws.close_reason
        closed = ConnectionClosed(self.close_code, self.close_reason)
        for future in self._pending.values():
            if not future.done():
                future.set_exception(closed)
        self._pending.clear()
        self._events.put_nowait(None)

    async def request(self, frame: dict[str, Any], timeout: float | None = None) -> Any:
        """Send a request frame (a ``request_id`` is added) and await its reply's data."""
        if self._ws is None:
            raise RuntimeError("not connected; use 'async with Client(url)' or connect()")
        if self.close_code is not None or (self._reader is not None and self._reader.done()):
            raise ConnectionClosed(self.close_code, self.close_reason)
        request_id = next(self._ids)
        future = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        await self._ws.write_message(encode({"request_id": request_id, **frame}))
        try:
            return await asyncio.wait_for(future, timeout or self.timeout)
        finally:
            self._pending.pop(request_id, None)

    async def call(
        self, resource: str, action: str, data: dict | None = None, *, fields: list[str] | None = None
    ) -> Any:
        """Call ``resource.action``; returns the reply's data or raises `RemoteError`."""
        frame: dict[str, Any] = {"resource": resource, "action": action}
        if data is not None:
            frame["data"] = data
        if fields is not None:
            frame["fields"] = list(fields)
        return await self.request(frame)

    async def subscribe(self, topic: str, fields: list[str] | None = None) -> Any:
        """Subscribe to a concrete channel such as ``chat.lobby``."""
        data: dict[str, Any] = {"topic": topic}
        if fields is not None:
            data["fields"] = list(fields)
        return await self.request({"action": "__subscribe__", "data": data})

    async def unsubscribe(self, topic: str) -> Any:
        """Stop receiving ``topic``."""
        return await self.request({"action": "__unsubscribe__", "data": {"topic": topic}})

    async def publish(self, topic: str, payload: Any) -> Any:
        """Publish to a topic that allows client publishing."""
        return await self.request({"action": "__publish__", "data": {"topic": topic, "payload": payload}})

    async def schema(self) -> dict:
        """The gateway's ``__schema__`` document."""
        return await self.request({"action": "__schema__"})

    async def ping(self) -> str:
        """Round-trip a ``__ping__``; returns "pong"."""
        return await self.request({"action": "__ping__"})

    async def next_event(self, timeout: float | None = None) -> Event:
        """The next event, waiting up to ``timeout`` seconds (TimeoutError after)."""
        event = await asyncio.wait_for(self._events.get(), timeout or self.timeout)
        if event is None:
            self._events.put_nowait(None)
            raise ConnectionClosed(self.close_code, self.close_reason)
        return event

    async def events(self) -> AsyncIterator[Event]:
        """Events as they arrive, until the connection closes."""
        while True:
            event = await self._events.get()
            if event is None:
                self._events.put_nowait(None)
                return
            yield event
