"""The embedded broker's presence: one process, so the members are counted in a dict."""

from __future__ import annotations

from typing import Any

from ..wire.presence import JOIN, LEAVE, Change, Member
from .base import PresenceListener


class MemoryPresence:
    """Members per channel, with their connections; joins and leaves go to the listener at once."""

    def __init__(self) -> None:
        self._channels: dict[str, dict[str, Member]] = {}
        self._listener: PresenceListener | None = None

    def listen(self, listener: PresenceListener) -> None:
        """Hand ``listener`` every join and leave."""
        self._listener = listener

    async def update(self, channel: str, key: str, data: dict[str, Any], connections: int,
                     max_members: int | None = None) -> bool:
        """Set member ``key``'s connections; False (nothing changed) when it is new and the channel is full."""
        members = self._channels.get(channel, {})
        known = members.get(key)
        if connections <= 0:
            if known is not None:
                del members[key]
                if not members:
                    self._channels.pop(channel, None)
                self._announce(channel, Change(LEAVE, key, known.data))
            return True
        if known is None and max_members is not None and len(members) >= max_members:
            return False
        members = self._channels.setdefault(channel, members)
        members[key] = Member(key, known.data if known is not None else data, connections)
        if known is None:
            self._announce(channel, Change(JOIN, key, data))
        return True

    async def members(self, channel: str) -> list[Member]:
        """The members of ``channel``, in the order they joined."""
        return list(self._channels.get(channel, {}).values())

    def _announce(self, channel: str, change: Change) -> None:
        if self._listener is not None:
            self._listener(channel, change)
