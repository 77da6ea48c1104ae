"""The memory broker's history under a flood of channels: resident memory, bounded and not.

Run: ``.venv/bin/python -m bench.history_memory`` (about half a minute). Each broker
runs in a fresh process of its own: one publish of a ~100-byte message to
each of ``--rooms`` channels of a topic with history, twice, then the
process's RSS and what the broker keeps. ``bounded`` is the default
`MemoryBroker` (10,000 channels, 64 MiB); ``unbounded`` switches both off,
as the broker was before it had bounds.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import multiprocessing
from typing import Any

from marshmallow import Schema, fields

from drizzle_gateway import Gateway, Topic
from drizzle_gateway.brokers import MemoryBroker
from tests.support.procstat import rss_bytes

MIB = 1024 * 1024


class Line(Schema):
    """A chat line: about 100 bytes of JSON."""

    author = fields.Str(required=True)
    text = fields.Str(required=True)


async def flood(rooms: int, bounded: bool) -> dict[str, Any]:
    """Publish once to each of ``rooms`` channels, twice over; RSS (MiB) and the broker's weight after each round."""
    broker = MemoryBroker() if bounded else MemoryBroker(history_channels=None, history_bytes=None)
    gateway = Gateway(topics=[Topic("room.{id}", Line, history=100, client_publish=True)], broker=broker)
    line = {"author": "mallory", "text": "x" * 70}
    figures: dict[str, Any] = {"start_mib": round(rss_bytes() / MIB, 1)}
    for round_ in (1, 2):
        for room in range(rooms):
            await gateway.publish("room.{id}", line, id=f"r{round_}-{room}")
        gc.collect()
        channels, kept = broker.history_weight
        figures[f"round{round_}"] = {"rss_mib": round(rss_bytes() / MIB, 1), "channels": channels,
                                     "kept_mib": round(kept / MIB, 1)}
    return figures


def run(rooms: int, bounded: bool, results: Any) -> None:
    """One broker in this (fresh) process."""
    results.put(asyncio.run(flood(rooms, bounded)))


def main() -> None:
    """Measure the bounded broker, then the unbounded one, each in its own process."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rooms", type=int, default=100_000)
    args = parser.parse_args()
    context = multiprocessing.get_context("spawn")
    for name, bounded in (("bounded", True), ("unbounded", False)):
        results = context.Queue()
        process = context.Process(target=run, args=(args.rooms, bounded, results))
        process.start()
        figures = results.get(timeout=600)
        process.join()
        print(f"{name}: {figures}")  # noqa: T201 (a bench script's output)


if __name__ == "__main__":
    main()
