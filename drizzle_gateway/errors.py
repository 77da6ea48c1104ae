"""Every failure a client sees: `ErrorCode` and `ActionError` (defined in `drizzle_gateway.wire.errors`)."""

from .wire.errors import ActionError, ErrorCode

__all__ = ["ActionError", "ErrorCode"]
