"""The wire dialects (defined in `drizzle_gateway.wire.dialect`); ``Protocol`` is `Dialect`'s earlier name."""

from .wire.dialect import CloseCode, Dialect, InvalidFrame, Request, RequestId, decode_request, encode
from .wire.dialect import Dialect as Protocol

__all__ = ["CloseCode", "Dialect", "InvalidFrame", "Protocol", "Request", "RequestId", "decode_request", "encode"]
