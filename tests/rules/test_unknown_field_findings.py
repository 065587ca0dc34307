"""SCHEMA.UNKNOWN_FIELD: a warning per unknown field of a claim, naming the path and the closest known field, that
never changes the outcome (issue 17, U4)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from rules.engine import RuleEngine
from rules.loading import PolicyError
from rules.pipeline import evaluate_record
from schemas.verdict import ClaimValidated, Finding

REPO_ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_LINES = (REPO_ROOT / "examples" / "claims.jsonl").read_bytes().splitlines()
AT = dt.datetime(2026, 11, 27, 12, tzinfo=dt.UTC)
RULE = "SCHEMA.UNKNOWN_FIELD"


def _verdict(engine: RuleEngine, document: dict[str, Any]) -> ClaimValidated:
    result = evaluate_record(json.dumps(document).encode(), engine, validated_at=AT)
    assert isinstance(result, ClaimValidated), result
    return result


def _example(number: int) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(EXAMPLE_LINES[number - 1])
    return document


def _unknown(verdict: ClaimValidated) -> list[Finding]:
    return [finding for finding in verdict.findings if finding.rule_id == RULE]


def test_a_misspelt_line_field_is_a_warning_naming_the_path_and_the_known_field(engine: RuleEngine) -> None:
    document = _example(5)
    document["lines"][1]["modifers"] = document["lines"][1].pop("modifiers")

    [finding] = _unknown(_verdict(engine, document))

    assert finding.message == "lines[1].modifers: unknown field; did you mean modifiers?"
    assert (finding.severity.value, finding.category.value) == ("warning", "schema")
    assert (finding.line_number, finding.field) == (2, "lines[1].modifers")
    assert (finding.carc, finding.rarc, finding.group_code) == (None, [], None)
    assert "modifiers" in finding.provider_action


def test_the_warning_changes_nothing_else_in_the_verdict(engine: RuleEngine) -> None:
    # Given the same claim with the field misspelt and with the field left out
    misspelt = _example(5)
    misspelt["lines"][1]["modifers"] = misspelt["lines"][1].pop("modifiers")
    absent = _example(5)
    del absent["lines"][1]["modifiers"]

    with_typo, without = _verdict(engine, misspelt), _verdict(engine, absent)

    # Then the misspelt one reads as the absent one (outcome, every other finding) plus the warning
    assert with_typo.outcome == without.outcome
    assert [f for f in with_typo.findings if f.rule_id != RULE] == without.findings
    assert with_typo.not_evaluated == without.not_evaluated


def test_a_passing_claim_with_an_unknown_field_still_passes(engine: RuleEngine) -> None:
    document = _example(1)
    document["producer_trace_id"] = "7f3a"

    verdict = _verdict(engine, document)

    assert verdict.outcome.value == "pass"
    assert [finding.message for finding in verdict.findings] == ["producer_trace_id: unknown field"]


def test_a_misspelt_required_field_gets_the_warning_beside_the_schema_error(engine: RuleEngine) -> None:
    document = _example(1)
    document["patinet"] = document.pop("patient")

    verdict = _verdict(engine, document)

    assert verdict.outcome.value == "fail"
    assert {finding.rule_id for finding in verdict.findings} == {"SCHEMA.MISSING_FIELD", RULE}
    assert _unknown(verdict)[0].message == "patinet: unknown field; did you mean patient?"


def test_the_warning_never_shows_the_fields_value(engine: RuleEngine) -> None:
    document = _example(1)
    document["patient"]["member_idd"] = "MBR-SECRET-42"

    [finding] = _unknown(_verdict(engine, document))

    assert "MBR-SECRET-42" not in finding.message + finding.provider_action
    assert finding.message == "patient.member_idd: unknown field; did you mean member_id?"


def test_the_catalogue_lists_the_rule_as_a_warning_of_the_contract(engine: RuleEngine) -> None:
    [spec] = [spec for spec in engine.rules() if spec.rule_id == RULE]

    assert (spec.category.value, spec.severity.value, spec.carc) == ("schema", "warning", None)
    assert "claim.submitted v1 contract" in spec.source


def test_engine_refuses_a_catalogue_without_the_unknown_field_rule(engine: RuleEngine) -> None:
    policy = engine.policy
    templates = policy.rule_templates - {RULE}

    with pytest.raises(PolicyError, match=r"without a catalogue entry: SCHEMA\.UNKNOWN_FIELD"):
        RuleEngine(dataclasses.replace(policy, rule_templates=templates))
