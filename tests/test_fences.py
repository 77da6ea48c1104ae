"""The fences: only `tornado_internals` names Tornado's private members, only `marshmallow_internals` marshmallow's.

Each fence lists the private names it relies on and checks at import that the
installed library still has them. Here the package's source is read (ast) for
any other module naming one of them, or reaching into a private name of a
tornado or marshmallow module; and each fence, reloaded over a library that
lost one of its names, must refuse with an ImportError that says what is
missing and which versions are supported.
"""

from __future__ import annotations

import ast
import importlib
import importlib.metadata
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest
import tornado
import tornado.tcpserver
import tornado.util
import tornado.websocket
from marshmallow import Schema, fields

from drizzle_gateway.schema import marshmallow_internals
from drizzle_gateway.transport import tornado_internals

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("drizzle_gateway", "tornado_drizzle")
FENCES = {"tornado_internals.py": tornado_internals.PRIVATE_NAMES,
          "marshmallow_internals.py": marshmallow_internals.PROTECTED_NAMES}
LIBRARIES = ("tornado", "marshmallow")
OWN_ATTRIBUTES = {("Gateway", "_schema")}
"""(class, attribute): a class's own attribute that shares a fenced name (Gateway caches its ``__schema__`` there)."""


def sources() -> Iterator[tuple[str, ast.Module]]:
    """Every module of the package and the shim, but the two fences: (path from the root, its syntax tree)."""
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if package == "drizzle_gateway" and path.name in FENCES:
                continue
            yield str(path.relative_to(ROOT)), ast.parse(path.read_text(), str(path))


def named(tree: ast.Module, names: frozenset[str]) -> list[tuple[int, str]]:
    """Where ``tree`` names one of ``names``: an attribute, a definition, an import, a getattr-style string."""
    found: list[tuple[int, str]] = []

    def visit(node: ast.AST, owner: str | None) -> None:
        name: object = None
        if isinstance(node, ast.Attribute):
            name = node.attr
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            name = node.name
        elif isinstance(node, ast.alias):
            name = node.name.rpartition(".")[2]
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
              and node.func.id in ("getattr", "setattr", "hasattr", "delattr") and len(node.args) > 1
              and isinstance(node.args[1], ast.Constant)):
            name = node.args[1].value
        if isinstance(name, str) and name in names and (owner, name) not in OWN_ATTRIBUTES:
            found.append((getattr(node, "lineno", 0), name))
        inner = node.name if isinstance(node, ast.ClassDef) else owner
        for child in ast.iter_child_nodes(node):
            visit(child, inner)

    visit(tree, None)
    return found


def private_library_names(tree: ast.Module) -> list[tuple[int, str]]:
    """Where ``tree`` imports or reaches a private name of a tornado or marshmallow module (``tornado.util._x``)."""
    imported: set[str] = set()  # local names bound to a library module or to something imported from one
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.asname or alias.name.partition(".")[0] for alias in node.names
                            if alias.name.partition(".")[0] in LIBRARIES)
        elif isinstance(node, ast.ImportFrom) and (node.module or "").partition(".")[0] in LIBRARIES:
            for alias in node.names:
                if private(alias.name):
                    found.append((node.lineno, f"{node.module}.{alias.name}"))
                imported.add(alias.asname or alias.name)
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and private(node.attr):
            root: ast.expr = node.value
            while isinstance(root, ast.Attribute):
                root = root.value
            if isinstance(root, ast.Name) and root.id in imported:
                found.append((node.lineno, ast.unparse(node)))
    return found


def private(name: str) -> bool:
    """``_name`` but not ``__name__``."""
    return name.startswith("_") and not name.startswith("__")


def test_only_the_fences_name_the_private_members_they_list():
    assert "_handle_message" in tornado_internals.PRIVATE_NAMES and "_hooks" in marshmallow_internals.PROTECTED_NAMES
    breaches: dict[str, list] = defaultdict(list)
    for path, tree in sources():
        for fence, names in FENCES.items():
            for line, name in named(tree, names):
                breaches[f"{path}:{line}"].append(f"{name} (only {fence} may name it)")
    assert dict(breaches) == {}


def test_no_module_outside_the_fences_reaches_into_a_private_name_of_tornado_or_marshmallow():
    breaches = {f"{path}:{line}": name for path, tree in sources() for line, name in private_library_names(tree)}
    assert breaches == {}


def test_the_scans_see_a_breach():
    """The two scans above, on a module that does what only the fences may do."""
    tree = ast.parse("import tornado.util\nfrom tornado.websocket import _WebSocketParams\n"
                     "from marshmallow import fields as mfields\n"
                     "class ChunkReader:\n    def f(self, field):\n        self._abort()\n"
                     "        getattr(field, '_serialize')\n        return tornado.util._websocket_mask, mfields._T\n"
                     "class Gateway:\n    def g(self):\n        return self._schema, self._hooks\n")
    assert named(tree, tornado_internals.PRIVATE_NAMES) == [(2, "_WebSocketParams"), (6, "_abort"),
                                                             (8, "_websocket_mask")]
    assert named(tree, marshmallow_internals.PROTECTED_NAMES) == [(7, "_serialize"), (11, "_hooks")]
    assert sorted(private_library_names(tree)) == [(2, "tornado.websocket._WebSocketParams"),
                                                   (8, "mfields._T"), (8, "tornado.util._websocket_mask")]


def problems(message: str, opening: str, supported: str, library: str) -> list[str]:
    """The problems an import check's ``message`` lists, once its opening and its closing advice are checked."""
    assert message.startswith(f"{opening}: "), message
    closing = f". It is tested with {supported}; install {library} in that range."
    assert message.endswith(closing), message
    return message.removeprefix(f"{opening}: ").removesuffix(closing).split("; ")


def test_the_installed_libraries_have_what_the_fences_rely_on():
    assert tornado_internals.missing() == []
    assert marshmallow_internals.missing() == []


TORNADO_LOSSES = {
    "_websocket_mask": (tornado.util, "tornado.util._websocket_mask is gone"),
    "_handle_connection": (tornado.tcpserver.TCPServer, "TCPServer._handle_connection is gone"),
    "_WebSocketParams": (tornado.websocket, "tornado.websocket._WebSocketParams is gone"),
    "_handle_message": (tornado.websocket.WebSocketProtocol13, "WebSocketProtocol13._handle_message is gone"),
}


@pytest.mark.parametrize("name", TORNADO_LOSSES)
def test_tornado_internals_refuses_a_tornado_without_a_name_it_relies_on(monkeypatch, name):
    owner, problem = TORNADO_LOSSES[name]
    monkeypatch.delattr(owner, name)
    with pytest.raises(ImportError) as refused:
        importlib.reload(tornado_internals)
    assert problems(str(refused.value), f"drizzle_gateway's websocket layer does not support Tornado {tornado.version}",
                    "tornado>=6.3,<7", "a Tornado") == [problem]
    monkeypatch.undo()
    assert tornado_internals.missing() == []


RESOLVE_HOOKS = type(Schema).resolve_hooks  # marshmallow 4 resolves hooks in its metaclass


def hooks_keyed_by_kind_and_many(cls: type[Schema]) -> dict:
    """``Schema._hooks`` laid out as marshmallow 3.20 lays it out: keyed by ``(kind, pass_many)``."""
    return {(kind, False): [name for name, _, _ in hooks] for kind, hooks in RESOLVE_HOOKS(cls).items()}


@pytest.mark.parametrize("loss", ["hooks keyed by kind and many", "no Field._serialize", "no Nested._schema"])
def test_marshmallow_internals_refuses_a_marshmallow_laid_out_otherwise(monkeypatch, loss):
    if loss == "hooks keyed by kind and many":
        monkeypatch.setattr(Schema, "resolve_hooks", classmethod(hooks_keyed_by_kind_and_many))
        problem = "Schema._hooks is not keyed by hook kind ('post_dump') as marshmallow 4 keys it " \
                  "(its keys: ('post_dump', False))"
    elif loss == "no Field._serialize":
        monkeypatch.delattr(fields.Field, "_serialize")
        problem = "Field._serialize is gone"
    else:
        monkeypatch.setattr(fields.Nested, "schema", property(lambda field: None))
        problem = "Nested.schema no longer returns the schema cached in _schema"
    with pytest.raises(ImportError) as refused:
        importlib.reload(marshmallow_internals)
    version = importlib.metadata.version("marshmallow")
    assert problems(str(refused.value), f"drizzle_gateway's schema layer does not support marshmallow {version}",
                    "marshmallow>=4,<5", "a marshmallow") == [problem]
    monkeypatch.undo()
    assert marshmallow_internals.missing() == []
