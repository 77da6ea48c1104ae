"""`Connection`, the Tornado websocket handler of a gateway (defined in `drizzle_gateway.transport.connection`)."""

from .transport.connection import Connection

__all__ = ["Connection"]
