"""Topics with history on the memory broker, timed by a clock the test moves by hand."""

from __future__ import annotations

from drizzle_gateway import Gateway, Topic
from drizzle_gateway.brokers import MemoryBroker
from tests.support.resources import Message

TTL = 60.0  # seconds: the ``history_ttl`` of ``feed.{room}``


class FakeClock:
    """A clock the test moves by hand (``history_ttl`` is timed by it)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def history_gateway(clock: FakeClock) -> Gateway:
    """Topics with history (5 events, for TTL seconds), one without, and permission variants."""
    return Gateway(
        topics=[
            Topic("feed.{room}", Message, history=5, history_ttl=TTL, client_publish=True),
            Topic("vault.{room}", Message, history=5, can_subscribe=lambda user, params: params["room"] == "open"),
            Topic("sealed", Message, history=5, client_subscribe=False),
            Topic("plain", Message),
        ],
        broker=MemoryBroker(clock=clock),
    )


def message(seq: int) -> dict:
    """A chat message numbered ``seq``."""
    return {"author": {"name": "ada"}, "text": f"m{seq}", "seq": seq}


async def publish(gateway: Gateway, seqs, room: str = "lobby") -> None:
    """Publish `message` ``seq`` to ``feed.{room}`` for each of ``seqs``, in order."""
    for seq in seqs:
        await gateway.publish("feed.{room}", message(seq), room=room)
