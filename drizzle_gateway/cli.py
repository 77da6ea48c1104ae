"""The drizzle-gateway command: serve a Gateway over websocket, or print its __schema__.

A mistake on the command line (a target that cannot be imported, a port in
use, an unknown log level) ends the command with one line on stderr saying
what was wrong and what to do, and a non-zero status; a module that fails
to import shows its own traceback first.
"""

from __future__ import annotations

import argparse
import asyncio
import difflib
import errno
import importlib
import inspect
import json
import logging
import os
import re
import signal
import socket
import ssl
import sys
import traceback
from types import FrameType
from typing import Any, NoReturn
from urllib.parse import urlsplit

import tornado.netutil

from . import __version__
from .brokers.base import Broker
from .contract.resources import Resource
from .gateway import Gateway
from .serving import serve, serve_workers
from .transport import log_format
from .transport.client_address import HEADERS, TrustedProxies, parse_network
from .wire.codec import encode

logger = logging.getLogger("drizzle_gateway")

PROG = "drizzle-gateway"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
PATH_PATTERN = re.compile(r"/[A-Za-z0-9._~/-]*")
REDIS_SCHEMES = ("redis", "rediss", "unix")


def fail(message: str) -> NoReturn:
    """End the command with ``drizzle-gateway: error: <message>`` on stderr and status 1."""
    raise SystemExit(f"{PROG}: error: {message}")


class Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line: the problem and where help is."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


# -- finding the gateway --------------------------------------------------------


def _print_their_traceback(exc: BaseException) -> None:
    """Print ``exc`` with the frames of this command and of importlib left out."""
    report = traceback.TracebackException.from_exception(exc)
    report.stack = traceback.StackSummary.from_list(
        [frame for frame in report.stack
         if frame.filename not in (__file__, importlib.__file__) and not frame.filename.startswith("<frozen importlib")]
    )
    sys.stderr.write("".join(report.format()))


def _import(module_name: str) -> Any:
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        missing = exc.name or ""
        if missing == module_name or module_name.startswith(missing + "."):
            fail(f"no module named {missing!r}; check the spelling, and run from the folder that contains it "
                 f"(the current directory is searched first)")
        _print_their_traceback(exc)
        fail(f"importing {module_name!r} failed (its traceback is above)")
    except Exception as exc:
        _print_their_traceback(exc)
        fail(f"importing {module_name!r} failed (its traceback is above)")


def _gateways_in(module: Any) -> list[str]:
    return sorted(name for name, value in vars(module).items() if isinstance(value, Gateway))


def load_gateway(target: str) -> Gateway:
    """Import ``MODULE:ATTR`` (the current directory first on ``sys.path``) and return the Gateway.

    ``ATTR`` may name a Gateway or a function that takes no argument and
    returns one. Every mistake ends the command with one clear line.
    """
    module_name, _, attr = target.partition(":")
    if not module_name or not attr:
        fail(f"expected MODULE:ATTR (e.g. examples.todo.app:gateway), got {target!r}")
    if module_name.endswith(".py") or "/" in module_name or os.sep in module_name:
        dotted = module_name.removesuffix(".py").strip("./").replace("/", ".").replace(os.sep, ".")
        fail(f"{module_name!r} is a file path; give the module's dotted name instead, e.g. {dotted}:{attr}")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    module = _import(module_name)
    value: Any = module
    where = module_name
    for part in attr.split("."):
        if not hasattr(value, part):
            hint = ""
            names = [name for name in dir(value) if not name.startswith("_")]
            close = difflib.get_close_matches(part, names, n=1)
            if close:
                hint = f"; did you mean {close[0]!r}?"
            elif value is module and _gateways_in(module):
                hint = f"; its Gateway objects: {', '.join(_gateways_in(module))}"
            fail(f"{where!r} has no attribute {part!r}{hint}")
        value = getattr(value, part)
        where = f"{where}.{part}" if where != module_name else f"{module_name}:{part}"
    return _as_gateway(value, target)


def _as_gateway(value: Any, target: str) -> Gateway:
    if isinstance(value, Gateway):
        return value
    if isinstance(value, type):
        if issubclass(value, Resource):
            fail(f"{target} is a Resource class, not a Gateway; point at the Gateway that serves it "
                 f"(e.g. MODULE:gateway)")
        fail(f"{target} is a class, not a drizzle_gateway.Gateway; point at a Gateway or a function returning one")
    if callable(value):
        try:
            inspect.signature(value).bind()
        except TypeError:
            fail(f"{target} is a function that needs arguments; point at a Gateway or a function that takes none")
        except ValueError:
            pass  # no signature to check (a builtin): just call it
        try:
            value = value()
        except Exception as exc:
            _print_their_traceback(exc)
            fail(f"calling {target}() failed (its traceback is above)")
        if isinstance(value, Gateway):
            return value
        fail(f"{target}() returned {type(value).__name__}, not a drizzle_gateway.Gateway")
    fail(f"{target} is a {type(value).__name__} object, not a drizzle_gateway.Gateway")


# -- serving --------------------------------------------------------------------


def bind(host: str, port: int) -> list[socket.socket]:
    """Listening sockets for ``host``:``port``; a clear error when they cannot be had."""
    try:
        return tornado.netutil.bind_sockets(port, address=host or None)
    except socket.gaierror:
        fail(f"--host {host!r} is not a known host name or address; use 127.0.0.1 (this machine only) "
             f"or 0.0.0.0 (every interface)")
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            fail(f"port {port} is already in use on {host}; stop the other server or pick another --port "
                 f"(--port 0 picks a free one)")
        if exc.errno == errno.EADDRNOTAVAIL:
            fail(f"cannot listen on --host {host!r}: it is not an address of this machine; use 127.0.0.1 "
                 f"(this machine only) or 0.0.0.0 (every interface)")
        if exc.errno == errno.EACCES:
            fail(f"no permission to listen on port {port}; ports below 1024 need privileges, pick another --port")
        fail(f"cannot listen on {host}:{port}: {exc.strerror or exc}")


def tls_context(certfile: str, keyfile: str | None) -> ssl.SSLContext:
    """A server TLS context with ``certfile``'s certificate chain and ``keyfile``'s key (else certfile's)."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(certfile, keyfile)
    except FileNotFoundError as exc:
        fail(f"cannot read {exc.filename or certfile}: no such file (--certfile, --keyfile)")
    except ssl.SSLError as exc:  # an OSError too: first
        fail(f"--certfile {certfile} and --keyfile {keyfile or certfile} are not a PEM certificate chain and its "
             f"private key ({exc.reason or exc})")
    except OSError as exc:
        fail(f"cannot read the certificate or key: {exc.strerror or exc} (--certfile, --keyfile)")
    return context


def _stopped_before_serving(signum: int, frame: FrameType | None) -> None:
    """SIGINT or SIGTERM while the app loads or Redis is checked: nothing is served yet, so exit 0 quietly."""
    raise SystemExit(0)


# -- arguments ------------------------------------------------------------------


def port_number(value: str) -> int:
    """``--port``: an integer from 0 (any free port) to 65535."""
    try:
        port = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number from 0 to 65535, got {value!r}") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"must be from 0 to 65535 (0 picks a free port), got {port}")
    return port


def url_path(value: str) -> str:
    """``--path``: a URL path; a missing leading ``/`` is added (``ws`` -> ``/ws``)."""
    path = value.strip()
    if not path.startswith("/"):
        path = "/" + path
    if not PATH_PATTERN.fullmatch(path):
        raise argparse.ArgumentTypeError(
            f"must be a URL path such as /ws (letters, digits and - _ . ~ /), got {value!r}")
    return path


def log_level(value: str) -> str:
    """``--log-level``: one of the standard level names, in any case."""
    level = value.upper()
    if level not in LOG_LEVELS:
        raise argparse.ArgumentTypeError(f"must be one of {', '.join(LOG_LEVELS)}, got {value!r}")
    return level


def trusted_proxy(value: str) -> str:
    """``--trusted-proxy``: an IP address or a network (``10.0.0.0/8``)."""
    try:
        parse_network(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return value


def redis_url(value: str) -> str:
    """``--redis``: a redis-py URL (``redis://``, ``rediss://`` or ``unix://``)."""
    if urlsplit(value).scheme not in REDIS_SCHEMES:
        raise argparse.ArgumentTypeError(f"must be a URL such as redis://127.0.0.1:6379/0, got {value!r}")
    return value


def worker_count(value: str) -> int:
    """``--workers``: a number of processes from 1, or ``auto`` (one per CPU core)."""
    if value.strip().lower() == "auto":
        return os.cpu_count() or 1
    try:
        count = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number of processes or auto, got {value!r}") from None
    if count < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {count}")
    return count


def make_parser() -> argparse.ArgumentParser:
    """The command's argument parser."""
    parser = Parser(prog=PROG, description="Serve a drizzle_gateway Gateway over websocket, or print its "
                                           "__schema__. MODULE:ATTR names a Gateway, or a function returning "
                                           "one, imported from the current directory (like uvicorn).")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="{serve,schema,codegen}")
    serve_cmd = commands.add_parser("serve", help="serve a Gateway over websocket",
                                    description="Serve a Gateway over websocket until SIGINT or SIGTERM, then "
                                                "drain: stop accepting, let running requests finish, close the "
                                                "websockets with 1012 (clients reconnect).")
    serve_cmd.add_argument("target", metavar="MODULE:ATTR", help="the Gateway, e.g. examples.chat.app:gateway")
    serve_cmd.add_argument("--host", default="127.0.0.1",
                           help="address to listen on; 0.0.0.0: every interface (default: %(default)s)")
    serve_cmd.add_argument("--port", type=port_number, default=8888,
                           help="TCP port; 0: any free port, logged (default: %(default)s)")
    serve_cmd.add_argument("--path", type=url_path, default="/ws",
                           help="URL path of the websocket (default: %(default)s)")
    serve_cmd.add_argument("--log-level", type=log_level, default="INFO", metavar="LEVEL",
                           help=f"{', '.join(LOG_LEVELS)} (default: %(default)s)")
    serve_cmd.add_argument("--log-format", choices=log_format.FORMATS, default="text",
                           help="text lines, or json: one JSON object per line (default: %(default)s)")
    serve_cmd.add_argument("--certfile", metavar="FILE", default=None,
                           help="serve TLS (wss://, https://) with this PEM certificate chain (default: off)")
    serve_cmd.add_argument("--keyfile", metavar="FILE", default=None,
                           help="with --certfile: its PEM private key (default: in the certificate file)")
    serve_cmd.add_argument("--trusted-proxy", metavar="ADDR_OR_CIDR", type=trusted_proxy, action="append",
                           default=[], help="a reverse proxy whose forwarded header names the client (repeatable), "
                                            "e.g. 127.0.0.1 or 10.0.0.0/8 (default: none, the gateway's own)")
    serve_cmd.add_argument("--forwarded-header", choices=HEADERS, default=None,
                           help="with --trusted-proxy: the header the proxies set (default: the gateway's, "
                                "X-Forwarded-For unless it says otherwise)")
    serve_cmd.add_argument("--explorer", action=argparse.BooleanOptionalAction, default=True,
                           help="serve the schema explorer page at /_explorer (default: on)")
    serve_cmd.add_argument("--redis", metavar="URL", type=redis_url, default=None,
                           help="share topics with other processes through this Redis, e.g. "
                                "redis://127.0.0.1:6379/0 (default: off, one process)")
    serve_cmd.add_argument("--redis-prefix", default="drizzle:", metavar="PREFIX",
                           help="prefix of this app's Redis channel names (default: %(default)s)")
    serve_cmd.add_argument("--metrics-port", type=port_number, default=None, metavar="N",
                           help="serve /metrics (and /healthz, /readyz) on this port of --host instead of the "
                                "websocket's; with --workers, worker i on N+i (default: beside the websocket)")
    serve_cmd.add_argument("--workers", type=worker_count, default=1, metavar="N",
                           help="processes sharing the port, restarted when they die; auto: one per CPU core; "
                                "more than 1 needs --redis (default: %(default)s)")
    schema_cmd = commands.add_parser("schema", help="print the Gateway's __schema__ (or AsyncAPI document) as JSON",
                                     description="Print the Gateway's __schema__ document as JSON on stdout, or "
                                                 "the same contract as an AsyncAPI 3.0 document.")
    schema_cmd.add_argument("target", metavar="MODULE:ATTR", help="the Gateway, e.g. examples.todo.app:gateway")
    schema_cmd.add_argument("--format", choices=("json", "asyncapi"), default="json",
                            help="json: the __schema__ document; asyncapi: an AsyncAPI 3.0 document "
                                 "(default: %(default)s)")
    schema_cmd.add_argument("--server", default="localhost:8888", metavar="HOST:PORT",
                            help="with --format asyncapi: the websocket server's host (default: %(default)s)")
    schema_cmd.add_argument("--path", type=url_path, default="/ws",
                            help="with --format asyncapi: the websocket's URL path (default: %(default)s)")
    codegen_cmd = commands.add_parser("codegen", help="generate client code from the Gateway's contract",
                                      description="Generate client code from the Gateway's contract.")
    languages = codegen_cmd.add_subparsers(dest="language", required=True, metavar="{ts}")
    ts_cmd = languages.add_parser("ts", help="TypeScript types and a typed drizzle.js client",
                                  description="Write TypeScript types (inputs, outputs, field selections, topics, "
                                              "error codes) and typed(dz), a typed wrapper of a drizzle.js client, "
                                              "from a Gateway or from a running gateway's __schema__ (--url).")
    ts_cmd.add_argument("target", metavar="MODULE:ATTR", nargs="?",
                        help="the Gateway, e.g. examples.todo.app:gateway (or give --url)")
    ts_cmd.add_argument("--url", metavar="WS_URL",
                        help="read __schema__ from a running gateway instead, e.g. ws://127.0.0.1:8888/ws")
    ts_cmd.add_argument("--token", metavar="TOKEN", default=None,
                        help="with --url: authenticate with this token (__auth__) before reading __schema__")
    ts_cmd.add_argument("-o", "--output", metavar="FILE", default="-",
                        help="where to write the module, e.g. src/api.ts (default: stdout)")
    return parser


class NeedsToken(Exception):
    """The gateway authenticates, and without a token it shows only its built-ins."""


async def fetch_schema(url: str, token: str | None = None) -> dict:
    """The ``__schema__`` document of the gateway serving websocket ``url``.

    Without ``token``, a document with no resources and no topics is
    checked: if the gateway refuses an anonymous request with
    UNAUTHENTICATED, `NeedsToken` is raised (its contract is hidden).
    """
    from .client import Client, RemoteError

    async with Client(url, timeout=30.0) as client:
        if token is not None:
            await client.request({"action": "__auth__", "data": {"token": token}})
        schema = await client.schema()
        if token is None and not schema.get("resources") and not schema.get("topics"):
            try:  # an authenticating gateway answers any non-built-in request UNAUTHENTICATED before looking it up
                await client.request({"resource": "__codegen__", "action": "__codegen__"})
            except RemoteError as error:
                if error.code == "UNAUTHENTICATED":
                    raise NeedsToken() from None
        return schema


def _codegen_ts(args: argparse.Namespace) -> None:
    from .contract.typescript import typescript

    if (args.target is None) == (args.url is None):
        fail("give either MODULE:ATTR or --url ws://HOST:PORT/PATH (not both)")
    if args.url is not None:
        if urlsplit(args.url).scheme not in ("ws", "wss"):
            fail(f"--url must be a websocket URL such as ws://127.0.0.1:8888/ws, got {args.url!r}")
        try:
            schema = asyncio.run(fetch_schema(args.url, args.token))
        except NeedsToken:
            fail(f"the gateway at {args.url} authenticates and shows its contract only after: "
                 f"give --token TOKEN")
        except Exception as exc:  # noqa: BLE001 - any failure to reach the gateway ends the command the same way
            fail(f"could not read __schema__ from {args.url}: {exc or type(exc).__name__}")
    else:
        schema = json.loads(encode(load_gateway(args.target).schema()))
    try:
        module = typescript(schema)
    except ValueError as exc:
        fail(str(exc))
    if args.output == "-":
        sys.stdout.write(module)
        return
    try:
        with open(args.output, "w", encoding="utf-8") as out:
            out.write(module)
    except OSError as exc:
        fail(f"cannot write {args.output}: {exc.strerror or exc}")


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``drizzle-gateway`` command."""
    parser = make_parser()
    args = parser.parse_args(argv)

    if args.command == "schema":
        gateway = load_gateway(args.target)
        if args.format == "asyncapi":
            document = gateway.asyncapi(host=args.server, path=args.path)
        else:
            document = gateway.schema()
        # through the wire's encoder first: a Constant's Decimal is a number there
        sys.stdout.write(json.dumps(json.loads(encode(document)), indent=2) + "\n")
        return
    if args.command == "codegen":
        _codegen_ts(args)
        return
    for sig in (signal.SIGINT, signal.SIGTERM):  # until serving takes them over: stopped before it began, status 0
        signal.signal(sig, _stopped_before_serving)
    if args.workers > 1 and not args.redis:
        parser.error(f"--workers {args.workers} needs --redis URL: each worker is a process of its own, and only "
                     f"Redis carries a publish from one worker to the subscribers of another")
    log_format.configure(args.log_level, args.log_format, process=args.workers > 1)
    if args.keyfile is not None and args.certfile is None:
        fail("--keyfile needs --certfile (the certificate it is the key of)")
    tls = tls_context(args.certfile, args.keyfile) if args.certfile is not None else None
    gateway = load_gateway(args.target)
    gateway.explorer = args.explorer
    if args.trusted_proxy or args.forwarded_header is not None:
        kept = gateway.trusted_proxies  # what the command line does not say stays as the gateway has it
        gateway.trusted_proxies = TrustedProxies(args.trusted_proxy or kept.networks,
                                                 args.forwarded_header or kept.header)
    make_broker = None
    if args.redis:
        try:
            from .brokers.redis.broker import RedisBroker
        except ImportError as exc:
            fail(f"--redis needs the redis package: pip install -e '.[redis]' in a checkout of drizzle_gateway, "
                 f"or pip install 'redis>=5.0.1' ({exc})")

        def make_broker() -> Broker:
            return RedisBroker(args.redis, prefix=args.redis_prefix)

        probed = RedisBroker(args.redis, prefix=args.redis_prefix)  # each process builds its own: this one only asks
        try:
            server = asyncio.run(probed.probe())
        except Exception as exc:  # noqa: BLE001 - whatever keeps Redis from answering ends the command the same way
            why = str(exc).rstrip(".") or type(exc).__name__
            fail(f"--redis: no Redis answers at {probed.where} ({why}); start redis-server "
                 f"there (e.g. redis-server --port {urlsplit(args.redis).port or 6379}) or fix the URL")
        logger.info("topics shared through %s, channel prefix %r", server, args.redis_prefix)

    if args.metrics_port is not None and not gateway.metrics:
        fail(f"--metrics-port: {args.target} was built with metrics=False; there are no metrics to serve")
    if args.metrics_port is not None and args.metrics_port and args.metrics_port + args.workers - 1 > 65535:
        fail(f"--metrics-port {args.metrics_port} with --workers {args.workers} needs ports up to "
             f"{args.metrics_port + args.workers - 1}; pick a lower --metrics-port")
    sockets = bind(args.host, args.port)
    metrics_sockets = None
    if args.metrics_port is not None:
        metrics_sockets = [bind(args.host, args.metrics_port + index if args.metrics_port else 0)
                           for index in range(args.workers)]
    if args.workers > 1:
        raise SystemExit(serve_workers(gateway, args.workers, args.host, args.path, sockets, metrics_sockets,
                                       make_broker, tls=tls))
    if make_broker is not None:
        gateway.use_broker(make_broker())
    asyncio.run(serve(gateway, args.host, args.path, sockets,
                      metrics_sockets[0] if metrics_sockets is not None else None, tls=tls))


if __name__ == "__main__":
    main()
