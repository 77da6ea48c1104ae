"""``python -m bench.structure [--json]``: the package's structure, measured in the checkout it runs in.

It reports (a) modules and lines per layer, (b) the largest module, (c) the
package modules one request and one publish run code in, traced with
``sys.setprofile`` in the thread of a gateway served for real, (d) the
public attributes of a ``Gateway()`` and its public methods and properties,
and (e) import circles and imports of a higher layer (the analysis of
``tests/support/imports.py``).

The checkout measured is the one ``drizzle_gateway`` is imported from, so it
also measures an older one: ``cd OLD && PYTHONPATH=$PWD python
/path/to/bench/structure.py``. It serves its gateway with the public API that
the flat package of before the layers has too, and counts every module of a
flat layout as top level.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import inspect
import json
import logging
import sys
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import FrameType, ModuleType
from typing import Any

import tornado.httpserver
import tornado.netutil
import tornado.web
from marshmallow import Schema, fields

import drizzle_gateway
from drizzle_gateway import Gateway, Resource, Topic, action
from drizzle_gateway.client import Client

HERE = Path(__file__).resolve().parent
PACKAGE = Path(drizzle_gateway.__file__).resolve().parent
WAIT = 5.0
"""Seconds any one step (a reply, an event, starting or stopping the trace) may take."""

logger = logging.getLogger("bench.structure")


def _analysis() -> ModuleType:
    """``tests.support.imports``; from this file's own checkout when the measured one predates it."""
    try:
        from tests.support import imports
    except ImportError:  # run as a file against an older checkout, whose tests/support has no such module
        spec = importlib.util.spec_from_file_location("structure_imports", HERE.parent / "tests/support/imports.py")
        assert spec is not None and spec.loader is not None
        imports = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = imports  # dataclasses look their module up there
        spec.loader.exec_module(imports)
    return imports


imports = _analysis()


# -- (a), (b), (e): read from the source ------------------------------------------


def relative(path: Path) -> str:
    """A file's path below the package (``runtime/session.py``)."""
    return path.resolve().relative_to(PACKAGE).as_posix()


def static_report() -> dict[str, Any]:
    """Modules and lines per layer, the largest module, import circles and upward imports."""
    found, edges = imports.graph(PACKAGE)
    layers: dict[str, dict[str, int]] = {}
    for layer in imports.ORDER:
        members = [module for module in found.values() if module.layer == layer]
        if members:
            layers[layer] = {"modules": len(members), "lines": sum(module.lines for module in members)}
    largest = max(found.values(), key=lambda module: module.lines)
    return {
        "package": str(PACKAGE),
        "layout": "layered" if imports.is_layered(PACKAGE) else "flat",
        "layers": layers,
        "total": {"modules": len(found), "lines": sum(module.lines for module in found.values())},
        "largest": {"path": relative(largest.path), "lines": largest.lines},
        "circles": [{"modules": [imports.short(name) for name in circle],
                     "layers": [layer for layer in imports.ORDER if any(found[name].layer == layer for name in circle)],
                     "within_one_layer": imports.within_one_layer(circle, found)}
                    for circle in imports.circles(edges)],
        "upward": [list(pair) for pair in imports.upward(found, edges)],
    }


# -- (c): traced in a served gateway -------------------------------------------


class Note(Schema):
    """A note as it is published and replied."""

    id = fields.Int()
    text = fields.Str(required=True)


class NewNote(Schema):
    """What creating a note takes."""

    text = fields.Str(required=True)


notes = Topic("notes", Note, client_publish=True)


class Notes(Resource):
    """One action with an input and an output schema that publishes to a typed topic."""

    name = "notes"

    @action(input=NewNote, output=Note)
    async def create(self, data: dict) -> dict:
        """Publish the new note to ``notes`` and reply with it."""
        note = {"id": 1, "text": data["text"]}
        await self.publish(notes, note)
        return note


class Tracer:
    """A profile function that records which package files had a function called (or resumed)."""

    def __init__(self) -> None:
        self.files: set[str] = set()
        self._seen: dict[str, str | None] = {}

    def __call__(self, frame: FrameType, event: str, arg: Any) -> None:
        if event == "call":
            filename = frame.f_code.co_filename
            if filename not in self._seen:
                path = Path(filename).resolve()
                self._seen[filename] = relative(path) if path.is_relative_to(PACKAGE) else None
            found = self._seen[filename]
            if found is not None:
                self.files.add(found)


class Served:
    """A gateway served by Tornado on a loopback port, in a thread of its own whose calls can be traced."""

    def __init__(self) -> None:
        self.port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="served-gateway", daemon=True)

    def start(self) -> None:
        """Start serving; returns once the port listens."""
        self._thread.start()
        if not self._ready.wait(WAIT):
            raise RuntimeError("the gateway did not start")

    def _run(self) -> None:
        loop = self._loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        loop.run_until_complete(self._listen())
        self._ready.set()
        loop.run_forever()
        loop.close()

    async def _listen(self) -> None:
        gateway = Gateway(resources=[Notes], topics=[notes])
        sockets = tornado.netutil.bind_sockets(0, "127.0.0.1")
        tornado.httpserver.HTTPServer(tornado.web.Application(gateway.routes())).add_sockets(sockets)
        self.port = sockets[0].getsockname()[1]

    async def traced(self, step: Callable[[], Awaitable[object]]) -> list[str]:
        """The package files whose functions the serving thread ran while ``step`` was awaited."""
        tracer = Tracer()
        await self._in_thread(lambda: sys.setprofile(tracer))  # sys.setprofile applies to the calling thread
        try:
            await step()
        finally:
            await self._in_thread(lambda: sys.setprofile(None))
        return sorted(tracer.files)

    async def _in_thread(self, call: Callable[[], None]) -> None:
        """Run ``call`` in the serving thread and wait until it has run."""
        assert self._loop is not None

        async def run() -> None:
            call()

        await asyncio.wait_for(asyncio.wrap_future(asyncio.run_coroutine_threadsafe(run(), self._loop)), WAIT)

    def stop(self) -> None:
        """Stop the serving loop and its thread."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(WAIT)


async def crossings(served: Served) -> dict[str, list[str]]:
    """The package files one request and one ``__publish__`` run code in, each until the subscriber has its event.

    One request and one publish go first unmeasured, so what is built once
    (compiled schemas, selections, lazy imports) is not counted.
    """
    url = f"ws://127.0.0.1:{served.port}/ws"
    async with Client(url) as caller, Client(url) as subscriber:
        await subscriber.subscribe("notes")

        async def request() -> None:
            await caller.call("notes", "create", {"text": "hi"}, fields=["id"])
            await subscriber.next_event(WAIT)

        async def publish() -> None:
            await caller.publish("notes", {"id": 2, "text": "hello"})
            await subscriber.next_event(WAIT)

        await request()
        await publish()
        return {"request": await served.traced(request), "publish": await served.traced(publish)}


def runtime_report() -> dict[str, Any]:
    """The crossings of a served gateway, and the public face of a constructed one."""
    served = Served()
    served.start()
    try:
        crossed = asyncio.run(crossings(served))
    finally:
        served.stop()
    return {**crossed, "gateway": gateway_face()}


# -- (d): the Gateway's public face -----------------------------------------------


def gateway_face() -> dict[str, list[str]]:
    """The public names a ``Gateway()`` sets on itself, and its class's public methods and properties."""
    gateway = Gateway()
    methods, properties = [], []
    for name in dir(Gateway):
        if name.startswith("_"):
            continue
        member = inspect.getattr_static(Gateway, name)
        if isinstance(member, property):
            properties.append(name)
        elif callable(member) or isinstance(member, staticmethod | classmethod):
            methods.append(name)
    return {"attributes": sorted(name for name in vars(gateway) if not name.startswith("_")),
            "methods": methods, "properties": properties}


# -- output -------------------------------------------------------------------------


def text(report: dict[str, Any]) -> str:
    """The report as lines for a reader."""
    lines = [f"package: {report['package']} ({report['layout']} layout)", "", "modules and lines per layer:"]
    for layer, counts in report["layers"].items():
        lines.append(f"  {layer:10} {counts['modules']:3} modules {counts['lines']:6} lines")
    lines.append(f"  {'total':10} {report['total']['modules']:3} modules {report['total']['lines']:6} lines")
    lines.append(f"largest module: {report['largest']['path']} ({report['largest']['lines']} lines)")
    for what, label in (("request", "one request (its action publishes once, until the subscriber has it)"),
                        ("publish", "one __publish__ (until the subscriber has it)")):
        lines += ["", f"{label}: {len(report[what])} modules", *wrap(report[what])]
    face = report["gateway"]
    lines += ["", f"Gateway() public attributes: {len(face['attributes'])}", *wrap(face["attributes"]),
              f"Gateway public methods: {len(face['methods'])}", *wrap(face["methods"]),
              f"Gateway public properties: {len(face['properties'])}", *wrap(face["properties"])]
    lines += ["", f"import circles: {len(report['circles'])}"]
    for circle in report["circles"]:
        where = ("inside " if circle["within_one_layer"] else "across ") + ", ".join(circle["layers"])
        lines += [f"  {len(circle['modules'])} modules, {where}:", *wrap(circle["modules"], "    ")]
    lines += ["", f"upward imports: {len(report['upward'])}"]
    lines += [f"  {source} -> {target}" for source, target in report["upward"]]
    return "\n".join(lines)


def wrap(names: list[str], indent: str = "  ", width: int = 100) -> list[str]:
    """``names`` comma-separated over lines of at most ``width`` characters."""
    lines: list[str] = []
    line = ""
    for name in names:
        if line and len(indent) + len(line) + len(name) + 2 > width:
            lines.append(indent + line + ",")
            line = ""
        line = f"{line}, {name}" if line else name
    return [*lines, indent + line] if line else lines


def main(argv: list[str] | None = None) -> int:
    """Measure and print the report (``--json``: as one JSON document)."""
    parser = argparse.ArgumentParser(prog="python -m bench.structure", description=__doc__.split("\n")[0])
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    report = {**static_report(), **runtime_report()}
    sys.stdout.write((json.dumps(report, indent=2) if args.json else text(report)) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
