"""`Frame`: one outgoing text frame, its websocket bytes built once however many peers it goes to."""

from __future__ import annotations

import struct

_FIN_TEXT = 0x81


def text_frame(payload: bytes) -> bytes:
    """An unmasked, final websocket text frame carrying ``payload`` (RFC 6455 section 5.2)."""
    size = len(payload)
    if size < 126:
        header = bytes((_FIN_TEXT, size))
    elif size <= 0xFFFF:
        header = struct.pack("!BBH", _FIN_TEXT, 126, size)
    else:
        header = struct.pack("!BBQ", _FIN_TEXT, 127, size)
    return header + payload


class Frame:
    """One text frame going to many connections: its wire bytes are built once, on first use."""

    __slots__ = ("text", "_wire")

    def __init__(self, text: str) -> None:
        self.text = text
        self._wire: bytes | None = None

    @property
    def wire(self) -> bytes:
        """The complete websocket frame (header + UTF-8 payload)."""
        if self._wire is None:
            self._wire = text_frame(self.text.encode())
        return self._wire
