"""Schema failures of an identifiable claim as `schema` findings, one per problem, with stable rule ids.

pydantic's error types are mapped to a small closed set so that consumers never depend on pydantic's names.
"""

from __future__ import annotations

MISSING_FIELD = "SCHEMA.MISSING_FIELD"
WRONG_TYPE = "SCHEMA.WRONG_TYPE"
OUT_OF_RANGE = "SCHEMA.OUT_OF_RANGE"
INVALID_VALUE = "SCHEMA.INVALID_VALUE"
RULES = (MISSING_FIELD, WRONG_TYPE, OUT_OF_RANGE, INVALID_VALUE)

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
