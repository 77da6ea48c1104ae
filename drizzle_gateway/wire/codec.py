"""How Python values become JSON text on the wire, and how JSON text is read back.

The rule (docs/protocol.md, "JSON"): every value marshmallow's built-in
fields can dump is encodable. orjson writes what it knows (str, int, float,
bool, None, dict, list, tuple, datetime, date, time, UUID, Enum, dataclass);
`decimal.Decimal` is written as a JSON number with its exact digits
(NaN and infinities as ``null``, as orjson writes float ones); integers
beyond 64 bits keep all their digits; strings holding lone surrogates are
written with ``\\u`` escapes. An object whose class defines ``__json__()``
is written as what that method returns. Anything else raises TypeError.

Reading back, `decode` is exact: a number whose text a float reproduces is
a float, any other number with a fraction or exponent is a `Decimal`, so
``decode(encode(x))`` encodes to the same text again (the Redis broker
relies on that). Requests are read with `decode_request`, where every such
number is a float (what JSON parsers in every language do).
"""

from __future__ import annotations

import json
import math
from decimal import Decimal
from typing import Any

import orjson

_OPTIONS = orjson.OPT_NON_STR_KEYS

# orjson would read integers beyond 64 bits as floats; texts with such long digit runs take the exact stdlib path.
# They are found by turning every ASCII digit into "0" and everything else into " " (in C), then looking for 19 zeros.
_DIGITS_AS_ZEROS = bytes(0x30 if 0x30 <= i <= 0x39 else 0x20 for i in range(256))
_LONG_DIGIT_RUN = b"0" * 19

PARSER_DEPTH = 1024
"""The deepest nesting of arrays and objects `decode_request` reads (orjson's limit)."""


class TooDeep(ValueError):
    """JSON text nested deeper than the parser reads (`PARSER_DEPTH`)."""


def decimal_text(value: Decimal) -> str:
    """The JSON number text of a Decimal: its exact digits, or ``null`` when it is NaN or infinite."""
    if not value.is_finite():
        return "null"
    return str(value)  # always -?d(.d+)?(E[+-]d+)?, a valid JSON number


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return orjson.Fragment(decimal_text(value))
    to_json = getattr(type(value), "__json__", None)
    if to_json is not None:
        return to_json(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def encode(value: Any) -> str:
    """Encode ``value`` as compact JSON text (UTF-8 kept as is), by the rule above.

    orjson does the work; only values it refuses (integers beyond 64 bits,
    lone surrogates) take a slower exact path.
    """
    try:
        return orjson.dumps(value, default=_default, option=_OPTIONS).decode()
    except TypeError:
        return _Slow().encode(value)


class _Slow:
    """The exact path: containers walked in Python, every leaf orjson can write left to orjson."""

    def __init__(self) -> None:
        self.depth = 0

    def encode(self, value: Any) -> str:
        if isinstance(value, str):
            return self.string(value)
        if isinstance(value, int) and not isinstance(value, bool):
            try:
                return orjson.dumps(value, option=_OPTIONS).decode()  # IntEnum and friends as orjson writes them
            except TypeError:
                return int.__repr__(value)
        if isinstance(value, dict):
            return self.container(
                "{", "}", (f"{self.key(k)}:{self.encode(v)}" for k, v in value.items()))
        if isinstance(value, (list, tuple)):
            return self.container("[", "]", (self.encode(item) for item in value))
        to_json = getattr(type(value), "__json__", None)
        if to_json is not None:
            return self.encode(to_json(value))
        return orjson.dumps(value, default=_default, option=_OPTIONS).decode()

    def container(self, start: str, end: str, parts: Any) -> str:
        self.depth += 1
        if self.depth > 254:  # orjson's own limit
            raise TypeError("Recursion limit reached")
        try:
            return start + ",".join(parts) + end
        finally:
            self.depth -= 1

    @staticmethod
    def string(value: str) -> str:
        try:
            return orjson.dumps(value).decode()
        except TypeError:
            return json.dumps(value, ensure_ascii=True)

    def key(self, key: Any) -> str:
        if isinstance(key, str):
            return self.string(key)
        if isinstance(key, int) and not isinstance(key, bool):
            try:
                return orjson.dumps({key: None}, option=_OPTIONS).decode()[1:-6]
            except TypeError:
                return f'"{int.__repr__(key)}"'
        return orjson.dumps({key: None}, default=_default, option=_OPTIONS).decode()[1:-6]


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"number {text[:20]}... is too large")
    return value


def _exact_number(text: str) -> float | Decimal:
    value = _finite_float(text)
    if orjson.dumps(value) == text.encode():
        return value
    return Decimal(text)


def _exact_int(text: str) -> int | Decimal:
    return Decimal(text) if text == "-0" else int(text)  # an int has no negative zero


def decode_request(text: str | bytes) -> Any:
    """Parse a request's JSON text; numbers with a fraction or exponent are floats.

    NaN, Infinity and numbers that overflow to it are refused, as JSON
    refuses them; so are lone surrogates. Texts holding integers too long
    for 64 bits are parsed by the standard library, which keeps them exact;
    the same texts are refused on either path. Text nested deeper than
    `PARSER_DEPTH` raises `TooDeep`, any other invalid text ValueError.
    """
    raw = text if isinstance(text, bytes) else text.encode("utf-8", "surrogatepass")
    if _LONG_DIGIT_RUN not in raw.translate(_DIGITS_AS_ZEROS):
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            if str(exc).startswith("depth limit exceeded"):
                raise TooDeep(f"nested deeper than {PARSER_DEPTH} levels") from None
            raise
    try:
        value = json.loads(text, parse_constant=_reject_constant, parse_float=_finite_float)
        json.dumps(value, ensure_ascii=False).encode()  # lone surrogates, which orjson refuses, cannot be encoded
    except RecursionError:
        raise TooDeep(f"nested deeper than {PARSER_DEPTH} levels") from None
    except UnicodeEncodeError:
        raise ValueError("a string holds a lone surrogate") from None
    return value


def decode(text: str | bytes) -> Any:
    """Parse JSON text exactly: numbers a float cannot reproduce come back as `Decimal`.

    Text that `encode` wrote from floats only (the usual case) is read by
    orjson and checked with one more orjson write; anything else (exact
    decimals, long integers, lone surrogate escapes) is read by the
    standard library, number by number.
    """
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        pass  # perhaps a lone surrogate escape, which `encode` writes and the standard library reads
    else:
        raw = text if isinstance(text, bytes) else text.encode()
        if orjson.dumps(value, option=_OPTIONS) == raw:  # also false when orjson read a long integer as a float
            return value
    return json.loads(text, parse_constant=_reject_constant, parse_float=_exact_number, parse_int=_exact_int)
