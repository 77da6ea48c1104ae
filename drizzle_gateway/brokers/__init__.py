"""Fan-out engines behind one small interface; the core never knows which runs."""

from .base import Broker, BrokerUnavailable, HistoryBroker, IdempotentBroker, Listener, Receipt
from .memory import MemoryBroker

__all__ = ["Broker", "BrokerUnavailable", "HistoryBroker", "IdempotentBroker", "Listener", "MemoryBroker",
           "Receipt"]
