"""The marshmallow fence: only `marshmallow_internals` names marshmallow's protected members.

The fence lists the protected names it relies on and checks at import that
the installed marshmallow still has them, laid out as marshmallow 3.20
through 4 lay them out. Here the package's source is read (ast) for any
other module naming one of them, or reaching into a private name of a
marshmallow module; the fence, reloaded over a marshmallow that lost one of
them, must refuse with an ImportError that says what is missing and which
versions are supported; and what it knows of the installed marshmallow line
(what the compiled path does differently on 3 and 4) must be that line's.
"""

from __future__ import annotations

import ast
import importlib
import importlib.metadata
from collections import defaultdict

import pytest
from marshmallow import Schema, fields, pre_load, validates
from marshmallow.decorators import POST_DUMP, POST_LOAD, PRE_DUMP, PRE_LOAD, VALIDATES

from drizzle_gateway.schema import marshmallow_internals
from drizzle_gateway.schema.compiled import compile_schema
from tests.support.fences import breaches, named, private_library_names, problems


def test_only_the_fence_names_marshmallows_protected_members_or_reaches_into_its_private_names():
    assert "_hooks" in marshmallow_internals.PROTECTED_NAMES
    assert breaches("marshmallow_internals.py", marshmallow_internals.PROTECTED_NAMES, "marshmallow") == {}


def test_the_scans_see_a_breach():
    """The scans above, on a module that does what only the fence may do."""
    tree = ast.parse("from marshmallow import fields as mfields\n"
                     "from marshmallow.schema import _T\n"
                     "class Selection:\n    def f(self, field):\n        getattr(field, '_serialize')\n"
                     "        return mfields._private\n"
                     "class Gateway:\n    def g(self):\n        return self._schema, self._hooks\n")
    assert named(tree, marshmallow_internals.PROTECTED_NAMES) == [(5, "_serialize"), (9, "_hooks")]
    assert sorted(private_library_names(tree, "marshmallow")) == [(2, "marshmallow.schema._T"),
                                                                  (6, "mfields._private")]


def test_the_installed_marshmallow_has_what_the_fence_relies_on():
    assert marshmallow_internals.missing() == []


RESOLVE_HOOKS = type(Schema).resolve_hooks  # every supported marshmallow resolves hooks in its metaclass


def declared(cls: type[Schema]) -> list[tuple[str, str]]:
    """(kind, method name) of each hook ``cls`` declares, read from the installed marshmallow's layout."""
    return [(key[0] if isinstance(key, tuple) else key, hook if isinstance(hook, str) else hook[0])
            for key, hooks in RESOLVE_HOOKS(cls).items() for hook in hooks]


def hooks_keyed_by_kind(cls: type[Schema]) -> dict:
    """``Schema._hooks`` laid out as later marshmallow 3 releases and 4 lay it out: keyed by kind."""
    layout: dict = defaultdict(list)
    for kind, name in declared(cls):
        layout[kind].append((name, False, {}))
    return layout


def hooks_keyed_by_kind_and_many(cls: type[Schema]) -> dict:
    """``Schema._hooks`` laid out as marshmallow 3.20 lays it out: keyed by ``(kind, pass_many)``."""
    layout: dict = defaultdict(list)
    for kind, name in declared(cls):
        layout[kind if kind == VALIDATES else (kind, False)].append(name)
    return layout


def hooks_keyed_by_name(cls: type[Schema]) -> dict:
    """``Schema._hooks`` laid out as no marshmallow lays it out: keyed by the hook's method name."""
    return {name: [kind] for kind, name in declared(cls)}


@pytest.fixture
def reload_after(monkeypatch):
    """Reload the fence once the test's patches are undone, so what it found at import is the real marshmallow's."""
    yield monkeypatch
    monkeypatch.undo()
    importlib.reload(marshmallow_internals)
    assert marshmallow_internals.missing() == []


@pytest.mark.parametrize("layout", [hooks_keyed_by_kind, hooks_keyed_by_kind_and_many], ids=["by kind", "3.20"])
def test_has_hooks_reads_both_layouts_of_hooks(reload_after, layout):
    """By kind (later marshmallow 3 releases, 4) or by (kind, pass_many) (3.20): a hooked schema is never compiled."""
    reload_after.setattr(Schema, "resolve_hooks", classmethod(layout))
    importlib.reload(marshmallow_internals)

    class Hooked(Schema):
        name = fields.Str()

        @pre_load
        def strip(self, data, **kwargs):
            return data

        @validates("name")
        def check_name(self, value, **kwargs):
            pass

    class Plain(Schema):
        name = fields.Str()

    hooked = [kind for kind in (PRE_LOAD, POST_LOAD, VALIDATES, PRE_DUMP, POST_DUMP)
              if marshmallow_internals.has_hooks(Hooked(), kind)]
    assert hooked == [PRE_LOAD, VALIDATES]
    assert not any(marshmallow_internals.has_hooks(Plain(), kind) for kind in (PRE_LOAD, VALIDATES, POST_DUMP))
    assert not compile_schema(Hooked()).fast and compile_schema(Plain()).fast


@pytest.mark.parametrize("loss", ["hooks keyed otherwise", "no Field._serialize", "no Nested._schema"])
def test_the_fence_refuses_a_marshmallow_laid_out_otherwise(reload_after, loss):
    if loss == "hooks keyed otherwise":
        reload_after.setattr(Schema, "resolve_hooks", classmethod(hooks_keyed_by_name))
        problem = "Schema._hooks is keyed neither by hook kind ('post_dump') nor by (kind, pass_many) " \
                  "(its keys: 'unchanged')"
    elif loss == "no Field._serialize":
        reload_after.setattr(fields.Field, "_serialize", None)
        problem = "Field._serialize is gone"
    else:
        reload_after.setattr(fields.Nested, "schema", property(lambda field: None))
        problem = "Nested.schema no longer returns the schema cached in _schema"
    with pytest.raises(ImportError) as refused:
        importlib.reload(marshmallow_internals)
    version = importlib.metadata.version("marshmallow")
    assert problems(str(refused.value), f"drizzle_gateway's schema layer does not support marshmallow {version}",
                    "marshmallow>=3.20,<5", "a marshmallow") == [problem]


def test_what_the_fence_knows_of_the_installed_marshmallow_line():
    """What differs between marshmallow 3 and 4, as the compiled path reads it, for the installed release."""
    release = tuple(int(part) for part in importlib.metadata.version("marshmallow").split(".")[:2])
    assert marshmallow_internals.BOOLEAN_DUMP_CONVERTS == (release < (4, 0))
    assert marshmallow_internals.FALSE_FAILS_VALIDATION == (release < (4, 0))
    assert marshmallow_internals.FIELD_PROCESSORS == (release >= (4, 3))
    processed = fields.Str(**({"pre_load": [str.strip]} if release >= (4, 3) else {}))
    assert marshmallow_internals.field_processors(processed) == (release >= (4, 3))
    assert not marshmallow_internals.field_processors(fields.Str())
