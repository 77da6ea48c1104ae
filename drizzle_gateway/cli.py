"""``drizzle-gateway serve|schema MODULE:ATTR``: run or describe a Gateway."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import logging
import os
import signal
import sys

import tornado.web

from .gateway import Gateway

logger = logging.getLogger("drizzle_gateway")


def load_gateway(target: str) -> Gateway:
    """Import ``MODULE:ATTR`` (the current directory first on ``sys.path``) and return the Gateway."""
    module_name, _, attr = target.partition(":")
    if not module_name or not attr:
        raise SystemExit(f"expected MODULE:ATTR, got {target!r}")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    value = importlib.import_module(module_name)
    for part in attr.split("."):
        value = getattr(value, part)
    if callable(value) and not isinstance(value, Gateway):
        value = value()
    if not isinstance(value, Gateway):
        raise SystemExit(f"{target} is not a drizzle_gateway.Gateway")
    return value


def make_app(gateway: Gateway, path: str = "/ws") -> tornado.web.Application:
    """A Tornado application serving ``gateway`` at ``path``."""
    return tornado.web.Application(gateway.routes(path))


async def serve(gateway: Gateway, host: str, port: int, path: str) -> None:
    """Listen until SIGINT or SIGTERM, then close the gateway."""
    app = make_app(gateway, path)
    server = app.listen(port, address=host)
    logger.info("drizzle_gateway listening on ws://%s:%d%s", host, port, path)
    if gateway.explorer:
        logger.info("explorer at http://%s:%d/_explorer", host, port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    logger.info("shutting down")
    server.stop()
    await gateway.close()


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``drizzle-gateway`` command."""
    parser = argparse.ArgumentParser(prog="drizzle-gateway", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    serve_cmd = commands.add_parser("serve", help="serve a Gateway over websocket")
    serve_cmd.add_argument("target", metavar="MODULE:ATTR")
    serve_cmd.add_argument("--host", default="127.0.0.1")
    serve_cmd.add_argument("--port", type=int, default=8888)
    serve_cmd.add_argument("--path", default="/ws")
    serve_cmd.add_argument("--log-level", default="INFO")
    serve_cmd.add_argument("--explorer", action=argparse.BooleanOptionalAction, default=True,
                           help="serve the schema explorer page at /_explorer (default: on)")
    serve_cmd.add_argument("--redis", metavar="URL", help="share topics with other processes through this Redis")
    serve_cmd.add_argument("--redis-prefix", default="drizzle:", help="prefix of this app's Redis channel names")
    schema_cmd = commands.add_parser("schema", help="print the Gateway's __schema__ as JSON")
    schema_cmd.add_argument("target", metavar="MODULE:ATTR")
    args = parser.parse_args(argv)

    if args.command == "schema":
        print(json.dumps(load_gateway(args.target).schema(), indent=2))  # noqa: T201 - the command's output
        return
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    gateway = load_gateway(args.target)
    gateway.explorer = args.explorer
    if args.redis:
        try:
            from .brokers.redis import RedisBroker
        except ImportError as exc:
            raise SystemExit(f"--redis needs the redis extra: pip install 'drizzle_gateway[redis]' ({exc})") from None
        gateway.use_broker(RedisBroker(args.redis, prefix=args.redis_prefix))
    asyncio.run(serve(gateway, args.host, args.port, args.path))


if __name__ == "__main__":
    main()
