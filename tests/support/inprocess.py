"""The request path and the fan-out run in process, frame by frame, with exact numbers.

`InProcess.ask` sends one request frame through a `TestClient` and returns
the reply or error frame whole; `InProcess.listen` subscribes with a field
selection and `InProcess.events` returns the events' data. Frames are read
with `json.loads(parse_float=Decimal)`, so numbers keep the exact digits
the wire carried. `exchange` sends a hand-made frame (a dict or any text)
through a `TestClient`.
"""

from __future__ import annotations

import functools
import itertools
import json
from decimal import Decimal
from typing import Any

from drizzle_gateway import Gateway
from drizzle_gateway.testing import TestClient
from drizzle_gateway.wire.dialect import encode


async def exchange(client: TestClient, frame: dict | str) -> Any:
    """Send ``frame`` as one raw text frame (a dict as JSON, a str as it is); the reply or error frame, whole."""
    return await client.exchange(frame if isinstance(frame, str) else encode(frame))


read = functools.partial(json.loads, parse_float=Decimal)
"""A frame as a client that keeps exact numbers sees it."""


class InProcess:
    """One in-process connection that returns whole frames (`TestClient` raises on error frames instead)."""

    def __init__(self, gateway: Gateway, loads: Any = read) -> None:
        self.frames: list[str] = []  # the text of every event frame received
        self.client = TestClient(gateway, loads=self._recorded(loads))
        self._ids = itertools.count(1)

    def _recorded(self, loads: Any) -> Any:
        def read_and_keep(text: str) -> Any:
            frame = loads(text)
            if "topic" in frame and "request_id" not in frame:
                self.frames.append(text)
            return frame
        return read_and_keep

    async def _connected(self) -> TestClient:
        if self.client.session is None:
            await self.client.connect()
        return self.client

    async def ask(self, resource: str | None, action: str, data: Any = None,
                  fields: list[str] | tuple[str, ...] | None = None) -> Any:
        """The reply or error frame, as a socket would have carried it."""
        frame: dict[str, Any] = {"request_id": next(self._ids), "action": action}
        if resource is not None:
            frame["resource"] = resource
        if data is not None:
            frame["data"] = data
        if fields is not None:
            frame["fields"] = list(fields)
        return await (await self._connected()).exchange(encode(frame))

    async def listen(self, channel: str, fields: list[str] | None = None) -> None:
        """Subscribe to ``channel`` with ``fields``, with ``__subscribe__``."""
        await (await self._connected()).subscribe(channel, fields)

    async def close(self) -> None:
        """End the connection: its subscriptions go."""
        await self.client.close()

    def events(self) -> list[Any]:
        """The ``data`` of every event received so far (then forgotten)."""
        return [event.data for event in self.client.events_now()]
