"""``python -m bench.schemas``: marshmallow's load and dump against the compiled ones, per call.

Times the schemas of the bench's two actions: ``OrderInput``/``Order`` and
``PostInput``/``Post`` (a 2-field input with one validator, a 4-field output
with a ``Nested`` schema), each
as the median of several repeats of many calls, and prints a table with the
ratio marshmallow / compiled.
"""

from __future__ import annotations

import statistics
import timeit
from collections.abc import Callable
from typing import Any

from bench.app import AUTHOR, Order, OrderInput, Post, PostInput
from drizzle_gateway.schema.compiled import compile_schema

REPEATS = 7
NUMBER = 20_000

ORDER_INPUT = {"sku": "SKU-1", "quantity": 3, "price": 9.5, "note": "leave at the door"}
ORDER = {"id": 42, "sku": "SKU-1", "quantity": 3, "price": 9.5, "note": "leave at the door", "total": 28.5}
POST_INPUT = {"title": "notes", "priority": 2}
POST = {"id": 1, "title": "notes", "priority": 2, "author": AUTHOR}


def per_call(func: Callable[[Any], Any], arg: Any) -> float:
    """The median time of one call, in microseconds."""
    times = timeit.repeat(lambda: func(arg), repeat=REPEATS, number=NUMBER)
    return statistics.median(times) / NUMBER * 1e6


def rows() -> list[tuple[str, float, float]]:
    """(what, marshmallow µs, compiled µs) for each timed operation."""
    cases = [("OrderInput load", OrderInput(), "load", ORDER_INPUT), ("Order dump", Order(), "dump", ORDER),
             ("PostInput load", PostInput(), "load", POST_INPUT), ("Post dump", Post(), "dump", POST)]
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
