"""The engine's verdicts: the headline cases of issue 4, ordering, outcome, and the contract of the verdict."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest

from rules.engine import RuleEngine
from schemas.claim import ClaimSubmitted
from schemas.verdict import ClaimValidated, Outcome, Severity, SourceRecord, verdict_event_id
from tests.rules.cases_loader import apply_patch, load_bases
from tests.rules.conftest import VALIDATED_AT

BASES = load_bases()


def _claim(base: str, patch: dict[str, Any] | None = None) -> ClaimSubmitted:
    return ClaimSubmitted.model_validate_json(json.dumps(apply_patch(BASES[base], patch or {})))


def _validate(engine: RuleEngine, claim: ClaimSubmitted) -> ClaimValidated:
    return engine.validate(claim, validated_at=VALIDATED_AT, source=None)


def test_the_worked_example_passes_with_nothing_to_report(engine: RuleEngine) -> None:
    # Given the worked example of rules/policy/SOURCES.md: 70 kg x 15 mg/kg = 1050 mg = J9353 x 210, and 200 mg
    # discarded = J9353-JW x 40
    claim = _claim("medicare_j9353")

    verdict = _validate(engine, claim)

    assert verdict.outcome is Outcome.PASS
    assert verdict.findings == []
    assert verdict.not_evaluated == []


def test_atezolizumab_billed_as_j9353_fails_naming_j9022_and_the_unit_conversion(engine: RuleEngine) -> None:
    # Given the source article's mistake: atezolizumab 1200 mg billed as 240 units of J9353
    claim = _claim(
        "medicare_j9353",
        {
            "set": {
                "diagnoses": ["C34.90"],
                "lines.0.units": 240,
                "lines.0.modifiers": ["JZ"],
                "lines.0.administration.drug": "atezolizumab",
                "lines.0.administration.dose_mg": 1200,
                "lines.0.administration.administered_mg": 1200,
                "lines.0.administration.discarded_mg": 0,
            },
            "unset": ["lines.1", "lines.0.ndc"],
        },
    )

    verdict = _validate(engine, claim)

    assert verdict.outcome is Outcome.FAIL
    mismatch = next(f for f in verdict.findings if f.rule_id == "CROSSWALK.DRUG_CODE_MISMATCH.DRUG_NAME")
    assert mismatch.severity is Severity.ERROR
    assert mismatch.line_number == 1
    assert mismatch.field == "lines[0].administration.drug"
    assert "J9022" in mismatch.message
    assert "1200 mg = 120 units of J9022, not 240 units of J9353" in mismatch.message
    assert mismatch.provider_action.startswith("Bill J9022 instead of J9353 (120 units")


@pytest.mark.parametrize("base", ["office_visit", "commercial_j9271"])
def test_claims_without_a_profiled_code_are_not_applicable(engine: RuleEngine, base: str) -> None:
    verdict = _validate(engine, _claim(base))

    assert verdict.outcome is Outcome.NOT_APPLICABLE
    assert verdict.findings == []


def test_warnings_alone_keep_the_outcome_pass(engine: RuleEngine) -> None:
    claim = _claim("medicare_j9353", {"set": {"place_of_service": "12"}})

    verdict = _validate(engine, claim)

    assert [f.severity for f in verdict.findings] == [Severity.WARNING]
    assert verdict.outcome is Outcome.PASS


def test_findings_are_sorted_claim_level_first_then_line_rule_and_field(engine: RuleEngine) -> None:
    # Given a claim with claim-level and line-level findings on several lines
    claim = _claim(
        "medicare_j9353",
        {
            "set": {
                "diagnoses": ["C34.90", "C50"],
                "submitted_on": "2028-01-01",
                "lines.1.units": 39,
                "lines.0.modifiers": ["25"],
                "lines.2.modifiers": ["25"],
            }
        },
    )

    verdict = _validate(engine, claim)

    keys = [(f.line_number is not None, f.line_number or 0, f.rule_id, f.field) for f in verdict.findings]
    assert keys == sorted(keys)
    assert verdict.findings[0].line_number is None
    assert {f.line_number for f in verdict.findings} == {None, 1, 2, 3}


def test_same_claim_gives_the_same_verdict(engine: RuleEngine) -> None:
    claim = _claim("medicare_j9353", {"set": {"lines.0.units": 105, "place_of_service": "12"}})

    first = _validate(engine, claim).model_dump_json()
    second = _validate(engine, claim).model_dump_json()

    assert first == second


def test_verdict_carries_ids_ruleset_and_source(engine: RuleEngine) -> None:
    claim = _claim("medicare_j9022")
    source = SourceRecord(topic="claims.submitted", partition=2, offset=41)

    verdict = engine.validate(claim, validated_at=VALIDATED_AT, source=source)

    assert verdict.event_id == verdict_event_id(claim.event_id)
    assert verdict.claim_id == claim.claim_id
    assert verdict.source_event_id == claim.event_id
    assert verdict.ruleset == engine.ruleset
    assert verdict.ruleset.id == "j9353"
    assert verdict.source == source
    assert verdict.validated_at == VALIDATED_AT


def test_verdict_json_is_valid_against_the_contract_model(engine: RuleEngine) -> None:
    # The engine's models validate the Python values it builds them from; consumers read the JSON, which must
    # validate against the same model and give the same verdict back.
    claim = _claim(
        "medicare_j9353", {"set": {"diagnoses": ["C34.90"], "lines.1.units": 39}, "unset": ["patient.weight_kg"]}
    )
    verdict = _validate(engine, claim)

    round_trip = ClaimValidated.model_validate_json(verdict.model_dump_json())

    assert round_trip == verdict
    assert verdict.not_evaluated


def test_naive_validation_time_is_refused(engine: RuleEngine) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        engine.validate(_claim("office_visit"), validated_at=dt.datetime(2026, 11, 27), source=None)


def test_repr_shows_ruleset_and_profiles(engine: RuleEngine) -> None:
    assert repr(engine).startswith("<RuleEngine ruleset=j9353@1.3.0 rules=")
    assert "profiles=J9353,J9022" in repr(engine)
