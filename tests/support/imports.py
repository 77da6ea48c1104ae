"""The package's import graph, read from its source: layers, upward imports, import circles.

Every import statement counts, wherever it sits: at module level, inside a
function, under ``if TYPE_CHECKING:``. Relative imports are resolved;
``from .x import y`` is an import of the module ``x.y`` when there is one,
else of ``x``. Importing a submodule also runs its parents' ``__init__``;
those implicit imports are not counted, or every module would import the
package's top.

A module's layer is the folder under the package it lives in (``brokers/redis/``
is in ``brokers``); modules directly under the package are the top level. In a
flat layout (no layer folder but ``brokers/``, as before the package was split)
every module is top level. Shared by ``tests/test_layers.py`` and ``bench/structure.py``.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

LAYERS = ("wire", "schema", "brokers", "contract", "runtime", "transport")
"""The layer folders, bottom to top: a layer may import those before it, never those after."""

TOP = "top level"
ORDER = (*LAYERS, TOP)
"""Every layer in import order; the top level (the public face) may import any layer."""


@dataclass(frozen=True)
class Module:
    """One module of the package: its dotted name, its file and its layer."""

    name: str
    path: Path
    layer: str
    is_package: bool

    @property
    def lines(self) -> int:
        """Lines of source."""
        return len(self.path.read_text().splitlines())


def is_layered(package: Path) -> bool:
    """True when the package has layer folders (``brokers/`` alone, as in the flat layout, does not count)."""
    return any((package / layer).is_dir() for layer in LAYERS if layer != "brokers")


def modules(package: Path) -> dict[str, Module]:
    """Every module of the package folder ``package``, by dotted name (a package by its own name)."""
    layered = is_layered(package)
    found: dict[str, Module] = {}
    for path in sorted(package.rglob("*.py")):
        parts = path.relative_to(package.parent).with_suffix("").parts
        is_package = parts[-1] == "__init__"
        if is_package:
            parts = parts[:-1]
        inner = parts[1:]  # below the package itself
        layer = inner[0] if layered and len(inner) > (0 if is_package else 1) and inner[0] in LAYERS else TOP
        found[".".join(parts)] = Module(".".join(parts), path, layer, is_package)
    return found


def imported(module: Module, known: Iterable[str]) -> set[str]:
    """The modules of ``known`` that ``module`` imports, anywhere in its source."""
    known = set(known)
    root = module.name.partition(".")[0]
    here = module.name.split(".") if module.is_package else module.name.split(".")[:-1]
    targets: set[str] = set()
    for node in ast.walk(ast.parse(module.path.read_text(), str(module.path))):
        if isinstance(node, ast.Import):
            targets.update(_nearest(alias.name, known) for alias in node.names if alias.name.split(".")[0] == root)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[:len(here) - node.level + 1]
                source = ".".join([*base, node.module] if node.module else base)
            elif (node.module or "").split(".")[0] == root:
                source = node.module or ""
            else:
                continue
            for alias in node.names:
                submodule = f"{source}.{alias.name}"
                targets.add(submodule if submodule in known else _nearest(source, known))
    targets.discard("")
    targets.discard(module.name)
    return targets


def _nearest(name: str, known: set[str]) -> str:
    """``name``, or the closest package above it that is known ('' if none)."""
    parts = name.split(".")
    while parts and ".".join(parts) not in known:
        parts.pop()
    return ".".join(parts)


def graph(package: Path) -> tuple[dict[str, Module], dict[str, set[str]]]:
    """The package's modules and, for each, the modules it imports."""
    found = modules(package)
    return found, {name: imported(module, found) for name, module in found.items()}


def short(name: str) -> str:
    """A module's name without the package's (``runtime.session``); the package's own ``__init__`` as itself."""
    head, _, rest = name.partition(".")
    return rest or head


def upward(found: dict[str, Module], edges: dict[str, set[str]]) -> list[tuple[str, str]]:
    """Imports of a module in a higher layer, as sorted (importer, imported) short names."""
    return sorted((short(source), short(target)) for source, targets in edges.items() for target in targets
                  if ORDER.index(found[target].layer) > ORDER.index(found[source].layer))


def circles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (import circles), each sorted, by size."""
    components = [sorted(component) for component in _components(edges) if len(component) > 1]
    return sorted(components, key=lambda component: (-len(component), component))


def within_one_layer(component: Iterable[str], found: dict[str, Module]) -> bool:
    """True when every module of ``component`` is in the same layer (folder)."""
    return len({found[name].layer for name in component}) == 1


def _components(edges: dict[str, set[str]]) -> Iterator[set[str]]:
    """Tarjan's strongly connected components, iteratively (no recursion limit)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    for start in sorted(edges):
        if start in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(start, iter(sorted(edges[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, successors = work[-1]
            for successor in successors:
                if successor not in index:
                    index[successor] = low[successor] = len(index)
                    stack.append(successor)
                    on_stack.add(successor)
                    work.append((successor, iter(sorted(edges.get(successor, ())))))
                    break
                if successor in on_stack:
                    low[node] = min(low[node], index[successor])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == index[node]:
                    component: set[str] = set()
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.add(member)
                        if member == node:
                            break
                    yield component
