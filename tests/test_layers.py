"""The layers import downward only: wire < schema < brokers < contract < runtime < transport < the top level.

Read from the source (ast, `tests.support.imports`): every import counts,
inside functions and under ``TYPE_CHECKING`` too, since a type-only import
upward still ties a lower layer to a higher one. An import circle may
only lie inside one layer folder.
"""

from __future__ import annotations

from pathlib import Path

from tests.support.imports import TOP, circles, graph, short, upward, within_one_layer

PACKAGE = Path(__file__).resolve().parent.parent / "drizzle_gateway"


def circles_across_layers(package: Path) -> list[list[str]]:
    """The import circles of ``package`` whose modules lie in more than one layer (short names)."""
    found, edges = graph(package)
    return [[short(name) for name in circle] for circle in circles(edges) if not within_one_layer(circle, found)]


def test_no_module_imports_a_layer_above_its_own():
    found, edges = graph(PACKAGE)
    assert upward(found, edges) == []


def test_no_import_circle_spans_layers():
    assert circles_across_layers(PACKAGE) == []


def write(root: Path, files: dict[str, str]) -> None:
    for name, source in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source)


def test_the_analysis_sees_upward_imports_and_circles_however_they_are_written(tmp_path):
    """Relative, absolute, in a function, under TYPE_CHECKING, a submodule named in ``from . import``."""
    package = tmp_path / "pkg"
    write(package, {
        "__init__.py": "from .gateway import Gateway\n",
        "gateway.py": "from .runtime import session\nclass Gateway: ...\n",
        "wire/__init__.py": "",
        "wire/frame.py": "def f():\n    from ..runtime.session import Session\n",
        "schema/__init__.py": "",
        "schema/a.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from . import b\n",
        "schema/b.py": "import pkg.schema.a\n",
        "runtime/__init__.py": "",
        "runtime/session.py": "from ..wire.frame import f\nfrom ..schema import a\n",
        "brokers/__init__.py": "from .redis import broker\n",
        "brokers/redis/__init__.py": "",
        "brokers/redis/broker.py": "from ...wire import frame\nfrom pkg.contract.topics import Topic\n",
        "contract/__init__.py": "",
        "contract/topics.py": "from ..brokers import redis\nclass Topic: ...\n",
    })
    found, edges = graph(package)
    assert found["pkg.brokers.redis.broker"].layer == "brokers" and found["pkg.gateway"].layer == TOP
    assert edges["pkg.brokers"] == {"pkg.brokers.redis.broker"}
    assert edges["pkg.contract.topics"] == {"pkg.brokers.redis"}
    assert upward(found, edges) == [("brokers.redis.broker", "contract.topics"), ("wire.frame", "runtime.session")]
    assert circles(edges) == [["pkg.runtime.session", "pkg.wire.frame"], ["pkg.schema.a", "pkg.schema.b"]]
    assert circles_across_layers(package) == [["runtime.session", "wire.frame"]]


def test_a_flat_package_is_all_top_level(tmp_path):
    """Before the layers (only ``brokers/`` a folder), nothing is upward and every circle is inside one layer."""
    package = tmp_path / "pkg"
    write(package, {"__init__.py": "", "session.py": "from .gateway import Gateway\n",
                    "gateway.py": "from .session import Session\nfrom .brokers import memory\n",
                    "brokers/__init__.py": "", "brokers/memory.py": "from ..session import Session\n"})
    found, edges = graph(package)
    assert {module.layer for module in found.values()} == {TOP}
    assert upward(found, edges) == []
    assert circles_across_layers(package) == []
    assert circles(edges) == [["pkg.brokers.memory", "pkg.gateway", "pkg.session"]]
