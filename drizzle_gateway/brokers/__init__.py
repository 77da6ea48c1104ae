"""Fan-out engines behind one small interface; the core never knows which runs."""

from .base import Broker, HistoryBroker, Listener
from .memory import MemoryBroker

__all__ = ["Broker", "HistoryBroker", "Listener", "MemoryBroker"]
