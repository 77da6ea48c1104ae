"""The marshmallow fence: only `marshmallow_internals` names marshmallow's protected members.

The fence lists the protected names it relies on and checks at import that
the installed marshmallow still has them, laid out as marshmallow 4 lays
them out. Here the package's source is read (ast) for any other module
naming one of them, or reaching into a private name of a marshmallow
module; and the fence, reloaded over a marshmallow that lost one of them,
must refuse with an ImportError that says what is missing and which
versions are supported.
"""

from __future__ import annotations

import ast
import importlib
import importlib.metadata

import pytest
from marshmallow import Schema, fields

from drizzle_gateway.schema import marshmallow_internals
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


RESOLVE_HOOKS = type(Schema).resolve_hooks  # marshmallow 4 resolves hooks in its metaclass


def hooks_keyed_by_kind_and_many(cls: type[Schema]) -> dict:
    """``Schema._hooks`` laid out as marshmallow 3.20 lays it out: keyed by ``(kind, pass_many)``."""
    return {(kind, False): [name for name, _, _ in hooks] for kind, hooks in RESOLVE_HOOKS(cls).items()}


@pytest.mark.parametrize("loss", ["hooks keyed by kind and many", "no Field._serialize", "no Nested._schema"])
def test_the_fence_refuses_a_marshmallow_laid_out_otherwise(monkeypatch, loss):
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
