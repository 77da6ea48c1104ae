"""Compiled fields: one built-in marshmallow field's load and dump of a present value, fast where provable.

``field_loader(field, partial)`` does what ``field.deserialize(value, **kwargs)``
does for a value that is present (as `Schema`, ``List`` and ``Dict`` call
it), and ``field_dumper(field)`` what ``field._serialize(value, ...)`` does,
for values of the types they pass through unchanged; any other value goes
to the field's own method. Either raises (`GiveUp`, or whatever the field
raises) when the value is not provably fine, and the caller then lets
marshmallow run the whole schema.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from marshmallow import fields, validate

from .marshmallow_internals import BOOLEAN_DUMP_CONVERTS, FALSE_FAILS_VALIDATION, field_processors, serializer


class GiveUp(Exception):  # noqa: N818 (a signal, not an error)
    """The fast path cannot prove the outcome: marshmallow decides."""


# -- which values pass through unchanged, as source -------------------------------------------


class _Inline:
    """Conditions (source over ``var``) under which a field's load or dump returns the value itself."""

    def __init__(self, load: Callable[[Any, str], str | None], dump: Callable[[Any, str], str | None]) -> None:
        self.load = load
        self.dump = dump


def _float_load(field: fields.Float, var: str) -> str:
    return f"type({var}) is float" if field.allow_nan else f"type({var}) is float and {var} - {var} == 0.0"


def _default_truths(field: fields.Boolean) -> bool:
    return field.truthy is fields.Boolean.truthy and field.falsy is fields.Boolean.falsy


def _boolean_dump(field: fields.Boolean, var: str) -> str | None:
    """marshmallow 4 dumps any value as it is; marshmallow 3 maps it through truthy/falsy (a bool to itself)."""
    if not BOOLEAN_DUMP_CONVERTS:
        return "True"
    return f"type({var}) is bool" if _default_truths(field) else None


def _never(field: Any, var: str) -> None:
    return None


INLINED: dict[type, _Inline] = {
    fields.String: _Inline(lambda f, v: f"type({v}) is str", lambda f, v: f"type({v}) is str"),
    fields.Integer: _Inline(lambda f, v: f"type({v}) is int",
                            lambda f, v: None if f.as_string else f"type({v}) is int"),
    fields.Float: _Inline(_float_load, lambda f, v: None if f.as_string else f"type({v}) is float"),
    fields.Boolean: _Inline(lambda f, v: f"type({v}) is bool" if _default_truths(f) else None,
                            _boolean_dump),
    fields.Raw: _Inline(lambda f, v: f"{v} is not None", lambda f, v: "True"),
    fields.Nested: _Inline(_never, _never),
    fields.List: _Inline(_never, _never),
    fields.Dict: _Inline(_never, _never),
}
"""The field classes generated code reads values for itself (exact classes: a subclass may differ)."""


def check_source(src: Any, validators: list, var: str) -> list[str]:
    """Statements that raise `GiveUp` unless every validator passes ``var`` (as ``And`` runs them)."""
    lines: list[str] = []
    for validator in validators:
        kind = type(validator)
        if kind is validate.Length:
            lines.append(f"ln = len({var})")
            if validator.equal is not None:
                lines += [f"if ln != {src.const('L', validator.equal)}:", "    raise GiveUp"]
                continue
            if validator.min is not None:
                lines += [f"if ln < {src.const('L', validator.min)}:", "    raise GiveUp"]
            if validator.max is not None:
                lines += [f"if ln > {src.const('L', validator.max)}:", "    raise GiveUp"]
        elif kind is validate.Range:
            if validator.min is not None:
                op = "<" if validator.min_inclusive else "<="
                lines += [f"if {var} {op} {src.const('R', validator.min)}:", "    raise GiveUp"]
            if validator.max is not None:
                op = ">" if validator.max_inclusive else ">="
                lines += [f"if {var} {op} {src.const('R', validator.max)}:", "    raise GiveUp"]
        elif _false_fails(validator):  # marshmallow 3's And fails a plain function's False
            lines += [f"if {src.const('V', validator)}({var}) is False:", "    raise GiveUp"]
        else:  # any other validator raises ValidationError itself; its return value is ignored, as by And
            lines.append(f"{src.const('V', validator)}({var})")
    return lines


def _false_fails(validator: Any) -> bool:
    """True when ``validator`` returning ``False`` fails the value (a plain function, on marshmallow 3)."""
    return FALSE_FAILS_VALIDATION and not isinstance(validator, validate.Validator)


def _run_validators(validators: list) -> Callable[[Any], Any] | None:
    """One call that runs every validator (raising when one fails), or None when there are none."""
    if not validators:
        return None
    if len(validators) == 1 and not _false_fails(validators[0]):
        return validators[0]

    def run(value: Any) -> None:
        for validator in validators:
            if validator(value) is False and _false_fails(validator):
                raise GiveUp

    return run


# -- loading ---------------------------------------------------------------------------------


def field_loader(field: fields.Field, partial: Any) -> Callable[[Any], Any]:
    """``field.deserialize(value, **kwargs)`` for a present ``value``; raises when unsure."""
    slow = functools.partial(field.deserialize, **({} if partial is None else {"partial": partial}))
    kind = type(field)
    if field_processors(field) or kind not in INLINED:
        return slow
    check = _run_validators(field.validators)
    if type(field) is fields.Nested:
        return _nested_load(field, partial, slow, check)
    if kind in _CONVERTERS:
        convert = _CONVERTERS[kind](field, partial)
        container = list if kind is fields.List else dict

        def load_container(value: Any) -> Any:
            if type(value) is not container:
                return slow(value)
            out = convert(value)
            if check is not None:
                check(out)
            return out

        return load_container
    condition = INLINED[kind].load(field, "value")
    if condition is None:
        return slow
    source = f"def load(value):\n    if {condition}:\n        {'check(value)' if check else 'pass'}\n" \
             "        return value\n    return slow(value)"
    namespace: dict[str, Any] = {"check": check, "slow": slow}
    exec(source, namespace)  # noqa: S102 (our own source)
    return namespace["load"]


def _nested_load(field: fields.Nested, partial: Any, slow: Callable, check: Callable | None) -> Callable:
    """The nested schema's compiled loader, found on first use (self-referencing schemas nest lazily).

    A nested schema that is not compiled gives up at once: calling marshmallow
    for it here would run its hooks, and again if the load gave up later.
    """
    from .compiled import compile_schema

    found: list = []

    def load(value: Any) -> Any:
        if not found:
            schema = field.schema
            many = bool(schema.many or field.many)
            unknown = schema.unknown if field.unknown is None else field.unknown
            fast = compile_schema(schema).loader(schema.partial if partial is None else partial, unknown)
            found.append((fast if bool(schema.many) == many else None, list if many else dict))
        fast, container = found[0]
        if fast is None:  # marshmallow runs the nested schema (its hooks, say): it runs the whole one, hooks once
            raise GiveUp
        if type(value) is not container:
            return slow(value)
        out = fast(value)
        if check is not None:
            check(out)
        return out

    return load


def _list_load(field: fields.List, partial: Any) -> Callable[[list], list]:
    inner = field_loader(field.inner, partial)
    return lambda value: [inner(each) for each in value]


def _dict_load(field: fields.Dict, partial: Any) -> Callable[[dict], dict]:
    key_load = field_loader(field.key_field, partial) if field.key_field is not None else None
    value_load = field_loader(field.value_field, partial) if field.value_field is not None else None
    if key_load is None and value_load is None:
        return dict

    def load(value: dict) -> dict:
        keys = {k: k for k in value} if key_load is None else {k: key_load(k) for k in value}
        if value_load is None:
            return {keys[k]: v for k, v in value.items()}
        return {keys[k]: value_load(v) for k, v in value.items()}

    return load


_CONVERTERS: dict[type[fields.Field], Callable[[Any, Any], Callable[[Any], Any]]] = {
    fields.List: _list_load,
    fields.Dict: _dict_load,
}


# -- dumping ---------------------------------------------------------------------------------


def field_dumper(field: fields.Field) -> Callable[[Any], Any]:
    """``field._serialize(value, None, None)``: what a schema, ``List`` or ``Dict`` makes of a value."""
    kind = type(field)
    slow = functools.partial(serializer(field), attr=None, obj=None)
    if type(field) is fields.List:
        inner = field_dumper(field.inner)
        return lambda value: None if value is None else [inner(each) for each in value]
    if type(field) is fields.Dict:
        return _dict_dump(field)
    if type(field) is fields.Nested:
        return _nested_dump(field)
    inline = INLINED.get(kind)
    condition = inline.dump(field, "value") if inline is not None else None
    if condition == "True":
        return lambda value: value
    if condition is None:
        return slow
    return eval(f"lambda value: value if {condition} else slow(value)", {"slow": slow})  # noqa: S307


def _dict_dump(field: fields.Dict) -> Callable[[Any], Any]:
    """A dict's dump; anything else is marshmallow's (whose error for a non-mapping differs between releases)."""
    key_dump = field_dumper(field.key_field) if field.key_field is not None else None
    value_dump = field_dumper(field.value_field) if field.value_field is not None else None
    slow = functools.partial(serializer(field), attr=None, obj=None)

    def dump(value: Any) -> Any:
        if type(value) is not dict:
            return slow(value)
        if key_dump is None and value_dump is None:
            return dict(value)
        keys = {k: k for k in value} if key_dump is None else {k: key_dump(k) for k in value}
        if value_dump is None:
            return {keys[k]: v for k, v in value.items() if k in keys}
        return {keys[k]: value_dump(v) for k, v in value.items()}

    return dump


def _nested_dump(field: fields.Nested) -> Callable[[Any], Any]:
    from .compiled import compile_schema

    found: list = []

    def dump(value: Any) -> Any:
        schema = field.schema  # before the None check, as marshmallow (an unknown class name raises)
        if value is None:
            return None
        if not found:
            many = bool(schema.many or field.many)
            found.append((compile_schema(schema).dumper(many), many))
        fast, many = found[0]
        return fast(value) if fast is not None else schema.dump(value, many=many)

    return dump
