"""Idempotency keys: what a publish may carry so that a repeat of it is delivered to nobody again.

A key is 1 to `MAX_KEY_LENGTH` characters of ``A-Z a-z 0-9 _ - .`` (a
UUID, hex or base64url text fits). It is scoped to one concrete channel:
the same key on two channels names two publishes. The clients make a
random one per publish and send it again, unchanged, when they retry.
"""

from __future__ import annotations

import re
import secrets

MAX_KEY_LENGTH = 64
"""The longest idempotency key accepted, in characters."""

KEY_PATTERN = re.compile(rf"^[A-Za-z0-9_.\-]{{1,{MAX_KEY_LENGTH}}}$")
"""What an idempotency key matches in full (no ``:``, so a key never runs into the channel beside it).

Written as JSON Schema reads it; in Python, only ``fullmatch`` is whole (``$`` also matches before a final newline).
"""

KEY_RULE = f"1 to {MAX_KEY_LENGTH} characters of A-Z a-z 0-9 _ - ."
"""`KEY_PATTERN` in words, for error messages and documents."""


def valid_key(key: object) -> bool:
    """Whether ``key`` is an acceptable idempotency key."""
    return isinstance(key, str) and KEY_PATTERN.fullmatch(key) is not None


def new_key() -> str:
    """A fresh random key (128 bits, hex): what a client sends with a publish it may retry."""
    return secrets.token_hex(16)
