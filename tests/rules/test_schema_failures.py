"""Schema failures of identifiable claims become `schema` findings with a small closed set of rule ids."""

from __future__ import annotations

import json

import pytest

from rules.engine import RuleEngine
from rules.schema_findings import INVALID_VALUE, MISSING_FIELD, OUT_OF_RANGE, RULES, WRONG_TYPE, schema_rule_id
from schemas.parsing import SchemaFailure, SchemaProblem, parse_claim_event
from schemas.verdict import Category, Outcome, Severity
from tests.rules.cases_loader import apply_patch, load_bases
from tests.rules.conftest import VALIDATED_AT


@pytest.mark.parametrize(
    ("error_type", "rule_id"),
    [
        ("missing", MISSING_FIELD),
        ("place_of_service_required", MISSING_FIELD),
        ("original_claim_id_required", MISSING_FIELD),
        ("string_type", WRONG_TYPE),
        ("float_type", WRONG_TYPE),
        ("model_type", WRONG_TYPE),
        ("int_from_float", WRONG_TYPE),
        ("greater_than", OUT_OF_RANGE),
        ("too_short", OUT_OF_RANGE),
        ("string_too_long", OUT_OF_RANGE),
        ("less_than_equal", OUT_OF_RANGE),
        ("string_pattern_mismatch", INVALID_VALUE),
        ("enum", INVALID_VALUE),
        ("date_from_datetime_parsing", INVALID_VALUE),
        ("value_error", INVALID_VALUE),
        ("uuid_type", WRONG_TYPE),
        ("something_new", INVALID_VALUE),
    ],
)
def test_pydantic_error_types_map_to_the_closed_set(error_type: str, rule_id: str) -> None:
    assert schema_rule_id(error_type) == rule_id


def _failure(patch: dict[str, object]) -> SchemaFailure:
    document = apply_patch(load_bases()["medicare_j9353"], patch)
    parsed = parse_claim_event(json.dumps(document).encode())
    assert isinstance(parsed, SchemaFailure)
    return parsed


def test_schema_failure_gives_one_readable_finding_per_problem(engine: RuleEngine) -> None:
    failure = _failure(
        {"set": {"lines.0.units": "210", "lines.1.service_date": "2026-02-30", "lines.2.units": 0}, "unset": ["payer"]}
    )

    verdict = engine.verdict_for_schema_failure(failure, validated_at=VALIDATED_AT, source=None)

    assert verdict.outcome is Outcome.FAIL
    assert verdict.claim_id == "CLM-BASE-1"
    assert [(f.rule_id, f.line_number, f.field) for f in verdict.findings] == [
        (MISSING_FIELD, None, "payer"),
        (WRONG_TYPE, 1, "lines[0].units"),
        (INVALID_VALUE, 2, "lines[1].service_date"),
        (OUT_OF_RANGE, 3, "lines[2].units"),
    ]
    assert all(f.category is Category.SCHEMA and f.severity is Severity.ERROR for f in verdict.findings)
    assert verdict.findings[1].message == "lines[0].units: Input should be a valid number"
    assert "lines[0].units" in verdict.findings[1].provider_action
    assert {f.rule_id for f in verdict.findings} <= set(RULES)


def test_missing_place_of_service_is_a_missing_field(engine: RuleEngine) -> None:
    failure = _failure({"unset": ["place_of_service"]})

    verdict = engine.verdict_for_schema_failure(failure, validated_at=VALIDATED_AT, source=None)

    assert [(f.rule_id, f.field) for f in verdict.findings] == [(MISSING_FIELD, "place_of_service")]


def test_problem_without_a_field_path_names_the_claim(engine: RuleEngine) -> None:
    failure = SchemaFailure(
        claim_id="CLM-X",
        event_id="evt-x",
        problems=(SchemaProblem(field="", line_number=None, error_type="value_error", message="Value error, odd"),),
    )

    verdict = engine.verdict_for_schema_failure(failure, validated_at=VALIDATED_AT, source=None)

    assert verdict.findings[0].rule_id == INVALID_VALUE
    assert verdict.findings[0].message == "claim: Value error, odd"
