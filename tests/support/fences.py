"""Scans for the fences: which modules name a fenced private member, or reach into a library's private names.

Each fence (``drizzle_gateway/transport/tornado_internals.py``,
``drizzle_gateway/schema/marshmallow_internals.py``) lists the private
names it relies on; no other module of the package or the shim may name
them, nor reach into a private name of the library. The fence's own tests
(tests/transport/test_tornado_internals.py, tests/schema/test_marshmallow_internals.py)
run these scans and check the import-time refusal with `problems`.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("drizzle_gateway", "tornado_drizzle")
LIBRARIES = ("tornado", "marshmallow")
OWN_ATTRIBUTES = {("Gateway", "_schema")}
"""(class, attribute): a class's own attribute that shares a fenced name (Gateway caches its ``__schema__`` there)."""


def sources(fence: str) -> Iterator[tuple[str, ast.Module]]:
    """Every module of the package and the shim but the fence ``fence`` (a file name): (path from the root, tree)."""
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if package == "drizzle_gateway" and path.name == fence:
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


def private_library_names(tree: ast.Module, library: str) -> list[tuple[int, str]]:
    """Where ``tree`` imports or reaches a private name of a ``library`` module (``tornado.util._x``)."""
    imported: set[str] = set()  # local names bound to a library module or to something imported from one
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.asname or alias.name.partition(".")[0] for alias in node.names
                            if alias.name.partition(".")[0] == library)
        elif isinstance(node, ast.ImportFrom) and (node.module or "").partition(".")[0] == library:
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


def breaches(fence: str, names: frozenset[str], library: str) -> dict[str, list[str]]:
    """Each module (``path:line``) but ``fence`` that names one of ``names`` or a private name of ``library``."""
    found: dict[str, list[str]] = {}
    for path, tree in sources(fence):
        for line, name in named(tree, names):
            found.setdefault(f"{path}:{line}", []).append(f"{name} (only {fence} may name it)")
        for line, name in private_library_names(tree, library):
            found.setdefault(f"{path}:{line}", []).append(f"{name} (a private name of {library})")
    return found


def problems(message: str, opening: str, supported: str, library: str) -> list[str]:
    """The problems an import check's ``message`` lists, once its opening and its closing advice are checked."""
    assert message.startswith(f"{opening}: "), message
    closing = f". It is tested with {supported}; install {library} in that range."
    assert message.endswith(closing), message
    return message.removeprefix(f"{opening}: ").removesuffix(closing).split("; ")
