"""Idempotency keys: the form a key takes, and the random ones clients make."""

from __future__ import annotations

import re

import pytest

from drizzle_gateway.wire.idempotency import KEY_PATTERN, MAX_KEY_LENGTH, new_key, valid_key


@pytest.mark.parametrize("key", ["a", "k-1", "0f3a.b_c-D", "x" * MAX_KEY_LENGTH,
                                 "123e4567-e89b-12d3-a456-426614174000"])
def test_keys_of_the_documented_form_are_valid(key):
    assert valid_key(key)


@pytest.mark.parametrize("key", ["", "x" * (MAX_KEY_LENGTH + 1), "a:b", "a b", "abc\n", "é", None, 7, b"abc"])
def test_anything_else_is_not_a_key(key):
    assert not valid_key(key)


def test_the_pattern_reads_the_same_in_json_schema():
    """``^...$`` with only characters ECMAScript reads the same way, so documents carry it as it is."""
    assert KEY_PATTERN.pattern.startswith("^") and KEY_PATTERN.pattern.endswith("$")
    assert "\\A" not in KEY_PATTERN.pattern and "\\Z" not in KEY_PATTERN.pattern


def test_new_keys_are_random_hex_and_valid():
    keys = {new_key() for _ in range(100)}
    assert len(keys) == 100
    assert all(re.fullmatch(r"[0-9a-f]{32}", key) and valid_key(key) for key in keys)
