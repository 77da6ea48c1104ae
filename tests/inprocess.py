"""The request path and the fan-out run in process: what a client would receive, without a socket.

`InProcess.ask` runs one request through `Gateway.call` and encodes the
reply or error frame as the connection does; `InProcess.listen` joins the
gateway's fan-out with a field selection and keeps the event frames.
Frames are read back with `json.loads(parse_float=Decimal)`, so numbers
keep the exact digits the wire carried.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from drizzle_gateway import Gateway
from drizzle_gateway.errors import ActionError, ErrorCode
from drizzle_gateway.fanout import View
from drizzle_gateway.protocol import Request, encode


def read(text: str) -> Any:
    """A frame as a client that keeps exact numbers sees it."""
    return json.loads(text, parse_float=Decimal)


class InProcess:
    """A connection without a socket: a user, a protocol, and the frames sent to it."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self.protocol = gateway.protocol
        self.user: Any = None
        self.frames: list[str] = []
        self._ids = 0

    def send_frame(self, frame: Any) -> None:
        self.frames.append(frame if isinstance(frame, str) else frame.text)

    async def ask(self, resource: str | None, action: str, data: Any = None,
                  fields: list[str] | tuple[str, ...] | None = None) -> dict:
        """The reply or error frame, as `Connection` would have sent it, read with `read`."""
        return read(await self.ask_text(resource, action, data, fields))

    async def ask_text(self, resource: str | None, action: str, data: Any = None,
                       fields: list[str] | tuple[str, ...] | None = None) -> str:
        """The reply or error frame's text. ``data`` travels as JSON first (encoded, then read as a request is)."""
        self._ids += 1
        if data is not None:
            data = json.loads(encode(data))
        request = Request(self._ids, action, resource, data, tuple(fields) if fields is not None else None)
        try:
            result = await self.gateway.call(self, request)
            frame = self.protocol.reply(request.request_id, result)
        except ActionError as exc:
            frame = self.protocol.error(request.request_id, exc)
        except Exception:
            frame = self.protocol.error(request.request_id, ActionError(ErrorCode.INTERNAL_ERROR, "internal error"))
        return frame

    async def listen(self, channel: str, fields: list[str] | None = None) -> None:
        """Subscribe to ``channel`` with ``fields``, as ``__subscribe__`` does."""
        topic, _ = self.gateway.find_topic(channel)
        await self.gateway.fanout.add(self, channel, View(self.protocol, topic.select(fields)))

    def events(self) -> list[Any]:
        """The ``data`` of every event frame received so far (then forgotten)."""
        events = [read(frame)["data"] for frame in self.frames]
        self.frames.clear()
        return events
