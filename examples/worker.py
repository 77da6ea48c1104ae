"""A worker that publishes todos to the todo example from a plain process: no gateway, no event loop.

Serve the todo example on one Redis (as many processes as you like), then
run the worker, as a Celery task or a cron job would::

    .venv/bin/drizzle-gateway serve examples.todo.app:gateway --redis redis://127.0.0.1:6379/0
    .venv/bin/python -m examples.worker --redis redis://127.0.0.1:6379/0 --count 3

Every client subscribed to ``todos``, on any of the processes, gets each
todo once. Each publish carries an idempotency key made from the todo's
id, so running the worker twice delivers nothing twice within the window.
"""

from __future__ import annotations

import argparse
import logging

from drizzle_gateway import Publisher
from examples.todo.app import todo_changed

logger = logging.getLogger("examples.worker")


def todo(number: int) -> dict:
    """The todo the worker publishes as its ``number``-th."""
    return {"id": 1000 + number, "title": f"from the worker #{number}", "done": False, "tags": ["worker"],
            "owner": {"name": "worker", "email": "worker@example.com"}}


def main(argv: list[str] | None = None) -> int:
    """Publish ``--count`` todos to ``todos``, blocking, one after another."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0", help="the gateways' Redis URL")
    parser.add_argument("--prefix", default="drizzle:", help="the gateways' --redis-prefix")
    parser.add_argument("--count", type=int, default=3, help="how many todos to publish")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    publisher = Publisher(topics=[todo_changed], redis=args.redis, prefix=args.prefix)
    try:
        for number in range(1, args.count + 1):
            item = todo(number)
            receipt = publisher.publish_sync(todo_changed, item, idempotency_key=f"worker-todo-{item['id']}")
            logger.info("todo %d %s", item["id"], "was published already" if receipt.duplicate else "published")
    finally:
        publisher.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
