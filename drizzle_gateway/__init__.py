"""drizzle_gateway: schema-driven websocket gateway for Tornado.

Resources are marshmallow-typed actions, topics are typed channels, and
``__schema__`` describes the whole contract.
"""

from .contract.resources import Resource, action
from .contract.topics import Topic
from .gateway import Gateway
from .publisher import Publisher
from .runtime.auth import AuthThrottle, Credentials
from .runtime.identity import Identity
from .runtime.limits import Limits
from .wire.errors import ActionError, ErrorCode

__all__ = [
    "ActionError", "AuthThrottle", "Credentials", "ErrorCode", "Gateway", "Identity", "Limits", "Publisher", "Resource",
    "Topic",
    "action",
]
__version__ = "0.1.0"
