"""The Redis broker: pub/sub for delivery, one stream per channel with history (`streams`)."""

from .broker import RedisBroker

__all__ = ["RedisBroker"]
