"""drizzle_gateway: schema-driven websocket gateway for Tornado.

Resources are marshmallow-typed actions, topics are typed channels, and
``__schema__`` describes the whole contract.
"""

from .auth import AuthThrottle, Credentials
from .errors import ActionError, ErrorCode
from .gateway import Gateway
from .limits import Limits
from .resources import Resource, action
from .topics import Topic

__all__ = [
    "ActionError", "AuthThrottle", "Credentials", "ErrorCode", "Gateway", "Limits", "Resource", "Topic", "action",
]
__version__ = "0.1.0"
