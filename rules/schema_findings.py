"""Schema failures of an identifiable claim as `schema` findings, one per problem, with stable rule ids; and the
fields the contract does not define (`schemas.unknown_fields`) as `SCHEMA.UNKNOWN_FIELD` warnings.

pydantic's error types are mapped to a small closed set so that consumers never depend on pydantic's names.
"""

from __future__ import annotations

from collections.abc import Iterable

from rules.context import Hit
from schemas.unknown_fields import UnknownField

MISSING_FIELD = "SCHEMA.MISSING_FIELD"
WRONG_TYPE = "SCHEMA.WRONG_TYPE"
OUT_OF_RANGE = "SCHEMA.OUT_OF_RANGE"
INVALID_VALUE = "SCHEMA.INVALID_VALUE"
# A warning: unknown fields are tolerated (producers evolve), but a misspelt field would otherwise read as absent.
UNKNOWN_FIELD = "SCHEMA.UNKNOWN_FIELD"
RULES = (MISSING_FIELD, WRONG_TYPE, OUT_OF_RANGE, INVALID_VALUE, UNKNOWN_FIELD)

_MISSING = frozenset({"missing", "place_of_service_required", "original_claim_id_required"})
_WRONG_TYPE = frozenset(
    {"int_from_float", "int_parsing", "float_parsing", "bool_parsing", "decimal_parsing", "none_required"}
)
_OUT_OF_RANGE = frozenset(
    {
        "greater_than",
        "greater_than_equal",
        "less_than",
        "less_than_equal",
        "multiple_of",
        "too_short",
        "too_long",
        "string_too_short",
        "string_too_long",
        "int_too_big",
        "decimal_max_digits",
        "decimal_max_places",
        "decimal_whole_digits",
    }
)


def schema_rule_id(error_type: str) -> str:
    """The SCHEMA rule id of a pydantic error type (e.g. `greater_than` -> `SCHEMA.OUT_OF_RANGE`)."""
    if error_type in _MISSING:
        return MISSING_FIELD
    if error_type in _OUT_OF_RANGE:
        return OUT_OF_RANGE
    if error_type in _WRONG_TYPE or error_type.endswith("_type"):
        return WRONG_TYPE
    return INVALID_VALUE


def unknown_field_hits(unknown: Iterable[UnknownField]) -> list[Hit]:
    """One SCHEMA.UNKNOWN_FIELD hit per unknown field; the message names the path and the closest known field."""
    return [
        Hit(
            UNKNOWN_FIELD,
            field.line_number,
            field.path,
            {
                "field": field.path,
                "suggestion": f"; did you mean {field.suggestion}?" if field.suggestion else "",
                "instead": f" to {field.suggestion}" if field.suggestion else "",
            },
        )
        for field in unknown
    ]
