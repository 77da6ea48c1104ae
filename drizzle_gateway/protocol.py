"""The wire dialects (defined in `drizzle_gateway.wire.dialect`); ``Protocol()`` is the ``drizzle.v1`` one."""

from .wire.dialect import CloseCode, InvalidFrame, Protocol, Request, RequestId, decode_request, encode

__all__ = ["CloseCode", "InvalidFrame", "Protocol", "Request", "RequestId", "decode_request", "encode"]
