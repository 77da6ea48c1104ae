"""What a publish puts on Redis pub/sub, whoever sends it: ``<origin> <json>``.

Every sender (a gateway's broker, a `drizzle_gateway.Publisher`) tags its
messages with an origin of its own, `ORIGIN_LENGTH` characters; a broker
skips the plain messages of its own origin (it delivered them locally
already). Numbered events of channels with history read
``<origin> #<epoch>:<offset> <json>`` (the `streams` APPEND script writes them).
"""

from __future__ import annotations

import uuid

ORIGIN_LENGTH = 32
"""Characters of an origin (a uuid4's hex)."""


def new_origin() -> str:
    """A fresh origin."""
    return uuid.uuid4().hex


def tagged(origin: str, body: bytes) -> bytes:
    """A plain message: ``body`` (JSON) tagged with its sender's ``origin``."""
    return f"{origin} ".encode() + body
