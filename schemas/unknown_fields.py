"""Fields a claim.submitted v1 event has that the contract does not define.

They are tolerated (producers evolve, and the models ignore extra fields), but each one is reported with its path
and the closest field the contract defines at that place (`lines[0].modifers` -> `modifiers`), so a misspelt field
does not silently read as an absent one.

Finding them costs a walk of the parsed document, so the parser decides first, cheaply, whether there can be any:
`known_field_count(claim)` (the fields the models took, counted from their `model_fields_set`) equals the number of
keys in the document exactly when no key is unknown. Every key of a valid claim's document is one field of one model
object, or an unknown one; duplicate keys are refused before this. Property-tested in
tests/schemas/test_unknown_fields.py.
"""

from __future__ import annotations

import difflib
import re
import types
from dataclasses import dataclass
from functools import cache
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel

from schemas.claim import ClaimLine, ClaimSubmitted

# A key that looks like a field name is shown; anything else (a producer keying an object by data, such as a
# member's name) is not repeated anywhere.
_FIELD_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
NAME_NOT_SHOWN = "<a key that is not a field name>"
_SUGGESTION_CUTOFF = 0.6  # difflib's default: `patinet` -> `patient`, `modifers` -> `modifiers`


@dataclass(frozen=True, slots=True)
class UnknownField:
    """One key the contract does not define at its place.

    `path` as in schema findings (`lines[0].modifers`); `line_number` of the claim line it is on, if any;
    `suggestion` the closest field the contract defines there, or None when none is close.
    """

    path: str
    line_number: int | None
    suggestion: str | None


@dataclass(frozen=True, slots=True)
class _Nested:
    name: str
    model: type[BaseModel]
    is_list: bool
    leaf: bool  # `model` holds no model objects itself


@cache
def _nested_fields(model: type[BaseModel]) -> tuple[_Nested, ...]:
    """The fields of `model` that hold model objects (directly, optional, or in a list)."""
    found = []
    for name, field in model.model_fields.items():
        shape = _model_in(field.annotation, in_list=False)
        if shape is not None:
            inner, is_list = shape
            found.append(_Nested(name, inner, is_list, leaf=not _nested_fields(inner)))
    return tuple(found)


def _model_in(annotation: Any, *, in_list: bool) -> tuple[type[BaseModel], bool] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation, in_list
    origin = get_origin(annotation)
    if origin is Annotated:
        return _model_in(get_args(annotation)[0], in_list=in_list)
    if origin is list:
        return _model_in(get_args(annotation)[0], in_list=True)
    if origin is Union or origin is types.UnionType:
        for argument in get_args(annotation):
            shape = _model_in(argument, in_list=in_list)
            if shape is not None:
                return shape
    return None


def known_field_count(model: BaseModel) -> int:
    """How many fields of the input `model` and the model objects in it were given (the cheap check's count)."""
    # On the hot path (every valid claim): pydantic's own set of given fields, no recursion into leaf models.
    given = model.__pydantic_fields_set__
    count = len(given)
    for nested in _nested_fields(type(model)):
        if nested.name not in given:
            continue
        value = getattr(model, nested.name)
        if value is None:
            continue
        if nested.leaf:
            count += (
                sum(len(item.__pydantic_fields_set__) for item in value)
                if nested.is_list
                else len(value.__pydantic_fields_set__)
            )
        elif nested.is_list:
            for item in value:
                count += known_field_count(item)
        else:
            count += known_field_count(value)
    return count


def find_unknown_fields(document: object) -> tuple[UnknownField, ...]:
    """Every unknown key of a claim.submitted document (parsed JSON), in document order; () for a non-object.

    The contents of an unknown field are not searched. Works on any JSON value (a schema failure's document too):
    a known field with a value of the wrong type is left to the schema findings.
    """
    found: list[UnknownField] = []
    if isinstance(document, dict):
        _walk(document, ClaimSubmitted, "", None, found)
    return tuple(found)


def _walk(
    document: dict[str, Any], model: type[BaseModel], prefix: str, line_number: int | None, found: list[UnknownField]
) -> None:
    fields = model.model_fields
    nested = {item.name: item for item in _nested_fields(model)}
    for key, value in document.items():
        if key not in fields:
            shown = key if _FIELD_NAME.match(key) else NAME_NOT_SHOWN
            close = difflib.get_close_matches(key, list(fields), n=1, cutoff=_SUGGESTION_CUTOFF) if shown == key else []
            found.append(UnknownField(_join(prefix, shown), line_number, close[0] if close else None))
            continue
        inner = nested.get(key)
        if inner is None:
            continue
        path = _join(prefix, key)
        if inner.is_list and isinstance(value, list):
            for index, item in enumerate(value):
                if isinstance(item, dict):
                    number = _line_number(item) if inner.model is ClaimLine else line_number
                    _walk(item, inner.model, f"{path}[{index}]", number, found)
        elif not inner.is_list and isinstance(value, dict):
            _walk(value, inner.model, path, line_number, found)


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _line_number(line: dict[str, Any]) -> int | None:
    number = line.get("line_number")
    return number if isinstance(number, int) and not isinstance(number, bool) and number >= 1 else None
