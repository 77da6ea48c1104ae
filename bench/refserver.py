"""``python -m bench.refserver``: a bench server whose gateway is another commit's (`bench.ref`).

Run from this checkout, with the other commit's checkout as the first
argument: this checkout's ``bench`` and ``tests.support`` are imported
first, then the other checkout goes first on ``sys.path``, so the server
(`bench.server`, `bench.app`) is this checkout's and the ``drizzle_gateway`` it
serves is the other's. It reaches its parent over a
`multiprocessing.connection` at the address given, and says which
``drizzle_gateway`` it imported before anything else.
"""

from __future__ import annotations

import json
import sys
from multiprocessing.connection import Client


def main(argv: list[str]) -> None:
    """``REF_ROOT HOST PORT AUTHKEY_HEX KIND SERVE_PORT OPTIONS_JSON``."""
    ref, host, port, key, kind, serve_port, options = argv
    import bench  # noqa: F401  (this checkout's, before the other goes first on the path)
    import tests.support.ports  # noqa: F401
    import tests.support.procstat  # noqa: F401

    sys.path.insert(0, ref)
    import drizzle_gateway
    from bench import server

    pipe = Client((host, int(port)), authkey=bytes.fromhex(key))
    pipe.send({"drizzle_gateway": drizzle_gateway.__file__})
    server.main(kind, int(serve_port), None, json.loads(options), pipe)


if __name__ == "__main__":
    main(sys.argv[1:])
