"""A topic's presence: who is on each of its channels, typed by a marshmallow schema.

``Topic("chat.{room}", Message, presence=Member, presence_of=fn)`` makes
every subscription to a channel of the topic a member of it. Its entry is
``fn(user, params)`` (plain or async: a dict or object by attribute names,
or None), merged over what the client sent with ``__subscribe__`` as
``"presence": {...}`` when the topic allows it (``client_presence=True``;
loaded through the schema, as partial when there is a ``presence_of``;
INVALID_DATA when it does not fit), then dumped through the schema. The
server's fields win over the client's.

The member's identity is its dumped ``key`` field (``presence_key``, "id"
by default): subscriptions with the same key are one member, however many
connections they come from.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from marshmallow import ValidationError

from ..schema.selection import SchemaLike, Selection, Selector
from ..wire.codec import encode
from ..wire.errors import ActionError, ErrorCode

PresenceOf = Callable[[Any, dict], Any]
"""``fn(user, params)`` returning (or resolving to) the subscription's presence entry, or None."""

MAX_KEY_LENGTH = 200
"""The longest member key (characters); a longer one is refused (INVALID_DATA)."""

NOT_ACCEPTED = "this topic takes no presence data from clients"


class Presence:
    """The presence declaration of a topic: the member schema, the server's hook, and the key field."""

    def __init__(self, schema: SchemaLike, *, of: PresenceOf | None = None, client: bool = False,
                 key: str = "id") -> None:
        if of is None and not client:
            raise ValueError("presence needs presence_of (the server's entry) or client_presence=True")
        self.selector = Selector(schema)
        self.of = of
        self.client = client
        self.key = key
        self._order = [field.data_key or name for name, field in self.schema.dump_fields.items()]
        if key not in self._order:
            raise ValueError(f"presence_key {key!r} is not a field {type(self.schema).__name__} dumps")

    @property
    def schema(self):
        """The member schema instance."""
        return self.selector.schema

    def select(self, fields: list[str] | tuple[str, ...] | None) -> Selection:
        """The selection of member fields ``fields`` (INVALID_FIELDS when one is unknown)."""
        return self.selector.select(fields)

    def load_client(self, data: Any) -> dict[str, Any] | None:
        """What a client sent as its presence, loaded through the schema; INVALID_DATA when refused.

        With ``presence_of`` the client's part is loaded as partial: the
        server's part gives the rest (the key, typically).
        """
        if data is None:
            return None
        if not self.client:
            raise ActionError(ErrorCode.INVALID_DATA, NOT_ACCEPTED, {"presence": [NOT_ACCEPTED]})
        try:
            loaded = self.schema.load(data, partial=self.of is not None)
        except ValidationError as exc:
            raise ActionError(ErrorCode.INVALID_DATA, "presence does not match the topic's member schema",
                              {"presence": exc.messages}) from None
        return dict(loaded)

    async def entry(self, user: Any, params: dict[str, str], client: dict[str, Any] | None,
                    max_bytes: int | None = None) -> tuple[str, dict[str, Any]] | None:
        """The member key and dumped entry of one subscription, or None when it is no member.

        ``client`` is what `load_client` gave. A client's entry without the
        key, a key that is not a short string or number, or an entry whose
        JSON is longer than ``max_bytes`` is refused with INVALID_DATA; a
        server entry without a key raises TypeError (a bug in ``presence_of``).
        """
        server = None
        if self.of is not None:
            server = self.of(user, params)
            if inspect.isawaitable(server):
                server = await server
        if server is None and client is None:
            return None
        dump = self.selector.all.dump
        merged = {**(dump(client) if client is not None else {}), **(dump(server) if server is not None else {})}
        data = {name: merged[name] for name in self._order if name in merged}  # in the schema's order
        key = data.get(self.key)
        if isinstance(key, bool) or not isinstance(key, str | int) or not str(key) or len(str(key)) > MAX_KEY_LENGTH:
            if server is not None:
                raise TypeError(f"presence_of returned an entry whose {self.key!r} is {key!r}, not a member key")
            why = "Missing data for required field." if key is None else "Invalid key."
            raise ActionError(ErrorCode.INVALID_DATA, f"presence needs a {self.key!r}: a string of 1 to "
                              f"{MAX_KEY_LENGTH} characters or a number", {"presence": {self.key: [why]}})
        if max_bytes is not None and len(encode(data)) > max_bytes:
            raise ActionError(ErrorCode.INVALID_DATA, f"presence is larger than {max_bytes} bytes",
                              {"presence": [f"Longer than {max_bytes} bytes."], "limit": "max_member_bytes"})
        return str(key), data

