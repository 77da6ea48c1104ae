"""Flow control on the flow gateway's ``bulk`` topic (tests/support/serve_app.py): publishers and readers.

`Publisher` is a server loop timing every publish, `publish_paced` a client
publishing at a set rate; `keep_reading`/`read_to` drive a `BulkSubscriber`;
`subscribed_stalled` opens a reader that stops reading and `Watch` notes when
its outbox congests and closes; `close_code` reads a stalled reader to its close.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import struct

from drizzle_gateway import Limits
from drizzle_gateway.client import Client
from tests.support.bulk_subscriber import BulkSubscriber
from tests.support.serve_app import FLOW_LIMITS
from tests.support.stalled_socket import StalledSocket, server_side

EVENT_BODY = "e" * 1000  # ~1 KB events
SLOW_LINK = 300 * 1024  # bytes a second: a reader on a slow link
SLACK = 0.35  # seconds the shared event loop (and a loaded machine) may add to a bound


def hold_limits(**changes) -> Limits:
    """The flow gateway's limits (`FLOW_LIMITS`) with a short ``publish_wait`` (0.2 s) and ``changes``."""
    return dataclasses.replace(FLOW_LIMITS, publish_wait=0.2, **changes)


class Publisher:
    """A server loop publishing numbered ~1 KB events to ``bulk``, timing every publish."""

    def __init__(self, gateway) -> None:
        self.gateway = gateway
        self.seq = 0
        self.longest = 0.0  # the longest one publish waited, in seconds

    async def run(self, seconds: float, rate: float | None = None, until=lambda: False) -> None:
        """Publish for ``seconds`` (or until ``until()``): as fast as the gateway lets it, or ``rate`` a second."""
        loop = asyncio.get_running_loop()
        start = loop.time()
        sent = 0
        while loop.time() < start + seconds and not until():
            began = loop.time()
            await self.gateway.publish("bulk", {"seq": self.seq, "body": EVENT_BODY})
            self.longest = max(self.longest, loop.time() - began)
            self.seq, sent = self.seq + 1, sent + 1
            if rate is not None:
                await asyncio.sleep(max(0.0, start + sent / rate - loop.time()))


def keep_reading(reader: BulkSubscriber) -> asyncio.Task:
    """Read ``reader``'s frames as they come until cancelled."""
    return asyncio.ensure_future(reader.frames(1 << 62))


async def read_to(reader: BulkSubscriber, reading: asyncio.Task, count: int) -> list[int]:
    """Stop ``reading``, read on until ``count`` events arrived in all; their seqs."""
    reading.cancel()
    await asyncio.gather(reading, return_exceptions=True)
    await asyncio.wait_for(reader.frames(count), 10)
    return [json.loads(payload)["data"]["seq"] for payload in reader.payloads]


async def subscribed_stalled(gateway, port: int) -> tuple[StalledSocket, object]:
    """A raw reader subscribed to ``bulk`` that reads nothing more; and its server-side outbox."""
    stalled = await StalledSocket.open(port)
    await stalled.send({"request_id": 1, "action": "__subscribe__", "data": {"topic": "bulk"}})
    assert await anext(stalled.frames()) == (0x1, b'{"request_id":1,"data":{"topic":"bulk"}}')
    return stalled, server_side(gateway, stalled.port()).outbox


class Watch:
    """When an outbox was first seen congested and seen closed (loop time), checked after every publish."""

    def __init__(self, outbox) -> None:
        self.outbox = outbox
        self.congested_at: float | None = None
        self.closed_at: float | None = None

    def __call__(self) -> bool:
        now = asyncio.get_running_loop().time()
        if self.congested_at is None and self.outbox.congested:
            self.congested_at = now
        if self.closed_at is None and self.outbox.closed:
            self.closed_at = now
        return False  # never stops the publisher


async def publish_paced(client: Client, first: int, count: int, rate: float, body: str) -> None:
    """Publish ``count`` numbered messages to ``bulk``, ``rate`` a second, each awaiting its reply."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    for n in range(count):
        await client.publish("bulk", {"seq": first + n, "body": body})
        await asyncio.sleep(max(0.0, start + (n + 1) / rate - loop.time()))


async def close_code(stalled: StalledSocket) -> int | None:
    """Read what the server sent until the socket ends; the close frame's code."""
    async for opcode, payload in stalled.frames():
        if opcode == 0x8:
            return struct.unpack("!H", payload[:2])[0]
    return None
