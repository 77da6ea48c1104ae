"""``python -m bench.schemas``: marshmallow's load and dump against the compiled ones, per call.

Times the bench's ``OrderInput``/``Order`` schemas and a small pair (a 2-field
input with one validator, a 4-field output with a ``Nested`` schema), each
as the median of several repeats of many calls, and prints a table with the
ratio marshmallow / compiled.
"""

from __future__ import annotations

import statistics
import timeit
from collections.abc import Callable
from typing import Any

from marshmallow import Schema, fields, validate

from bench.app import Order, OrderInput
from drizzle_gateway.compiled import compile_schema

REPEATS = 7
NUMBER = 20_000


class SmallInput(Schema):
    name = fields.Str(required=True, validate=validate.Length(min=1, max=40))
    count = fields.Int(required=True)


class Author(Schema):
    id = fields.Int()
    name = fields.Str()


class SmallOutput(Schema):
    id = fields.Int()
    title = fields.Str()
    score = fields.Float()
    author = fields.Nested(Author)


ORDER_INPUT = {"sku": "SKU-1", "quantity": 3, "price": 9.5, "note": "leave at the door"}
ORDER = {"id": 42, "sku": "SKU-1", "quantity": 3, "price": 9.5, "note": "leave at the door", "total": 28.5}
SMALL_INPUT = {"name": "ada", "count": 7}
SMALL_OUTPUT = {"id": 1, "title": "notes", "score": 0.5, "author": {"id": 2, "name": "ada"}}


def per_call(func: Callable[[Any], Any], arg: Any) -> float:
    """The median time of one call, in microseconds."""
    times = timeit.repeat(lambda: func(arg), repeat=REPEATS, number=NUMBER)
    return statistics.median(times) / NUMBER * 1e6


def rows() -> list[tuple[str, float, float]]:
    """(what, marshmallow µs, compiled µs) for each timed operation."""
    cases = [("OrderInput load", OrderInput(), "load", ORDER_INPUT), ("Order dump", Order(), "dump", ORDER),
             ("SmallInput load", SmallInput(), "load", SMALL_INPUT),
             ("SmallOutput dump", SmallOutput(), "dump", SMALL_OUTPUT)]
    out = []
    for name, schema, method, arg in cases:
        compiled = compile_schema(schema)
        assert compiled.fast and getattr(compiled, method)(arg) == getattr(schema, method)(arg)
        out.append((name, per_call(getattr(schema, method), arg), per_call(getattr(compiled, method), arg)))
    return out


def main() -> None:
    print(f"{'':18} {'marshmallow µs':>15} {'compiled µs':>12} {'ratio':>7}")
    for name, slow, fast in rows():
        print(f"{name:18} {slow:15.2f} {fast:12.2f} {slow / fast:6.1f}x")


if __name__ == "__main__":
    main()
