"""Property tests: any valid claim yields a verdict without raising, and the verdict is self-consistent."""

from __future__ import annotations

import copy
import datetime as dt
import json
import re
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rules.engine import RuleEngine
from schemas.claim import ClaimSubmitted
from schemas.verdict import ClaimValidated, Outcome, Severity
from tests.rules.cases_loader import load_bases
from tests.rules.conftest import VALIDATED_AT

# Codes and values the rules care about, mixed with arbitrary ones, so that generated claims reach every rule.
PROCEDURE_CODES = [
    "J9353", "J9022", "J9024", "J9271", "J9299", "J9173", "J9023", "J9357", "J9355",
    "J9999", "J3590", "C9399", "96413", "96415", "96417", "96365", "96401", "99205", "99214", "99213", "A1234",
]  # fmt: skip
MODIFIERS = ["JW", "JZ", "25", "59", "XU"]
DIAGNOSES = ["C50.911", "C50", "C34.90", "C22.0", "C67.9", "Z51.12", "I10", "C33", "C50.999", "c50911", "X"]
DRUGS = ["margetuximab-cmkb", "Atezolizumab", "Tecentriq Hybreza", "durvalumab", "pembrolizumab", "aspirin", " "]
NDCS = ["70720-0022-01", "50242091701", "50242-0933-01", "1234", "00000-0000-00", "5024-0917-01"]

UNFILLED = re.compile(r"\{[a-z_]+\}")

dates = st.dates(min_value=dt.date(2017, 1, 1), max_value=dt.date(2028, 12, 31))
mg = st.one_of(st.none(), st.floats(min_value=0, max_value=5000, allow_nan=False, allow_infinity=False))


@st.composite
def timestamps(draw: st.DrawFn, day: dt.date) -> str:
    moment = dt.datetime.combine(day, dt.time()) + dt.timedelta(minutes=draw(st.integers(0, 36 * 60)))
    offset = dt.timezone(dt.timedelta(hours=draw(st.integers(-12, 14))))
    return moment.replace(tzinfo=offset).isoformat()


# Text a valid claim can carry: no control characters (ids reject them) and no lone surrogates (JSON can escape one,
# but no UTF-8 decoder accepts it: such a document is a dead letter, which the parsing tests cover, not a claim).
CLAIM_TEXT = st.characters(exclude_categories=["Cc", "Cs"])


@st.composite
def administrations(draw: st.DrawFn, day: dt.date) -> dict[str, Any]:
    record: dict[str, Any] = {
        "drug": draw(st.one_of(st.none(), st.sampled_from(DRUGS), st.text(CLAIM_TEXT, min_size=1, max_size=30))),
        "dose_mg": draw(mg),
        "administered_mg": draw(mg),
        "discarded_mg": draw(mg),
        "started_at": draw(st.one_of(st.none(), timestamps(day))),
        "ended_at": draw(st.one_of(st.none(), timestamps(day))),
        "pre_infusion_assessment": draw(st.one_of(st.none(), st.booleans())),
        "response_documented": draw(st.one_of(st.none(), st.booleans())),
    }
    if record["drug"] is not None and not record["drug"].strip():
        record["drug"] = None
    return {key: value for key, value in record.items() if value is not None}


@st.composite
def claim_lines(draw: st.DrawFn, number: int, diagnosis_count: int) -> dict[str, Any]:
    day = draw(dates)
    line: dict[str, Any] = {
        "line_number": number,
        "service_date": day.isoformat(),
        "procedure_code": draw(st.sampled_from(PROCEDURE_CODES)),
        "modifiers": draw(st.lists(st.sampled_from(MODIFIERS), max_size=4)),
        "units": draw(st.one_of(st.integers(1, 2000), st.floats(0.01, 2000, allow_nan=False))),
        "charge": draw(st.integers(0, 100_000)),
    }
    if draw(st.booleans()):
        line["diagnosis_pointers"] = draw(st.lists(st.integers(1, diagnosis_count + 2), min_size=1, max_size=4))
    if draw(st.booleans()):
        line["ndc"] = {"code": draw(st.sampled_from(NDCS)), "quantity": draw(st.integers(1, 50)), "unit": "ML"}
    if draw(st.booleans()):
        line["administration"] = draw(administrations(day))
    return line


@st.composite
def claims(draw: st.DrawFn) -> dict[str, Any]:
    diagnoses = draw(st.lists(st.sampled_from(DIAGNOSES), min_size=1, max_size=12))
    line_count = draw(st.integers(1, 8))
    claim_type = draw(st.sampled_from(["professional", "institutional"]))
    document: dict[str, Any] = {
        "schema_version": 1,
        # Any text an identifier may hold: no control characters (schemas.claim.IDENTIFIER_PATTERN).
        "event_id": draw(st.text(CLAIM_TEXT, min_size=1, max_size=20)),
        "claim_id": draw(st.text(CLAIM_TEXT, min_size=1, max_size=20)),
        "claim_type": claim_type,
        "payer": {
            "id": draw(st.sampled_from(["EXAMPLE-COMMERCIAL-1", "MCR", "ANY-PAYER"])),
            "type": draw(st.sampled_from(["medicare", "medicaid", "commercial"])),
        },
        "patient": {"member_id": "MBR-EX-9999"},
        "billing_provider": {"npi": "1234567893"},
        "diagnoses": diagnoses,
        "lines": [draw(claim_lines(number, len(diagnoses))) for number in range(1, line_count + 1)],
    }
    if draw(st.booleans()):
        document["submitted_on"] = draw(dates).isoformat()
    if draw(st.booleans()):
        document["patient"]["weight_kg"] = draw(st.floats(0.5, 300, allow_nan=False))
    if claim_type == "professional" or draw(st.booleans()):
        document["place_of_service"] = draw(st.sampled_from(["11", "12", "19", "22", "49", "99"]))
    if draw(st.booleans()):
        authorization: dict[str, Any] = {"number": "PA-1"}
        for key, value in (
            ("approved_units", draw(st.one_of(st.none(), st.integers(0, 3000)))),
            ("valid_from", draw(st.one_of(st.none(), dates.map(dt.date.isoformat)))),
            ("valid_to", draw(st.one_of(st.none(), dates.map(dt.date.isoformat)))),
        ):
            if value is not None:
                authorization[key] = value
        document["prior_authorization"] = authorization
    return document


def profiled(engine: RuleEngine, claim: ClaimSubmitted) -> bool:
    return any(line.procedure_code in engine.policy.profiles for line in claim.lines)


def assert_consistent(engine: RuleEngine, claim: ClaimSubmitted, verdict: ClaimValidated) -> None:
    """What holds for every verdict: fail iff an error, sorted findings, catalogue entries, filled templates."""
    has_error = any(finding.severity is Severity.ERROR for finding in verdict.findings)
    assert (verdict.outcome is Outcome.FAIL) == has_error
    keys = [(f.line_number is not None, f.line_number or 0, f.rule_id, f.field) for f in verdict.findings]
    assert keys == sorted(keys)
    catalogue = engine.policy.catalogue
    for finding in verdict.findings:
        assert catalogue[finding.rule_id].category is finding.category
        assert not UNFILLED.search(finding.message)
        assert not UNFILLED.search(finding.provider_action)
    assert {skip.rule_id for skip in verdict.not_evaluated} <= set(catalogue)
    assert verdict.claim_id == claim.claim_id
    assert ClaimValidated.model_validate_json(verdict.model_dump_json()) == verdict


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(document=claims())
def test_any_valid_claim_yields_a_consistent_verdict(engine: RuleEngine, document: dict[str, Any]) -> None:
    claim = ClaimSubmitted.model_validate_json(json.dumps(document))

    verdict = engine.validate(claim, validated_at=VALIDATED_AT, source=None)

    assert_consistent(engine, claim, verdict)
    if verdict.outcome is not Outcome.FAIL:
        assert verdict.outcome is (Outcome.PASS if profiled(engine, claim) else Outcome.NOT_APPLICABLE)


BASES = load_bases()


@st.composite
def perturbed_bases(draw: st.DrawFn) -> dict[str, Any]:
    """A base claim (tests/rules/cases/bases.yaml) with up to three small changes: reaches pass outcomes too."""
    document = copy.deepcopy(BASES[draw(st.sampled_from(sorted(BASES)))])
    lines = document["lines"]
    for _ in range(draw(st.integers(0, 3))):
        line = lines[draw(st.integers(0, len(lines) - 1))]
        administration = line.setdefault("administration", {})
        change = draw(st.sampled_from(["units", "discarded", "administered", "modifiers", "date", "drop", "payer"]))
        if change == "units":
            line["units"] = draw(st.integers(1, 400))
        elif change == "discarded":
            administration["discarded_mg"] = draw(st.sampled_from([0, 2.5, 5, 199, 200, 840]))
        elif change == "administered":
            administration["administered_mg"] = draw(st.sampled_from([750, 1049, 1050, 1200, 1680, 1700]))
        elif change == "modifiers":
            line["modifiers"] = draw(st.lists(st.sampled_from(MODIFIERS), max_size=3, unique=True))
        elif change == "date":
            shifted = dt.date.fromisoformat(line["service_date"]) + dt.timedelta(days=draw(st.integers(-800, 30)))
            line["service_date"] = shifted.isoformat()
        elif change == "drop" and administration:
            administration.pop(draw(st.sampled_from(sorted(administration))))
        elif change == "payer":
            document["payer"] = {"id": draw(st.sampled_from(["EXAMPLE-COMMERCIAL-1", "X"])), "type": "commercial"}
    return document


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(document=perturbed_bases())
def test_near_valid_claims_yield_a_consistent_verdict(engine: RuleEngine, document: dict[str, Any]) -> None:
    claim = ClaimSubmitted.model_validate_json(json.dumps(document))

    verdict = engine.validate(claim, validated_at=VALIDATED_AT, source=None)

    assert_consistent(engine, claim, verdict)
    assert verdict.outcome is not Outcome.NOT_APPLICABLE or not profiled(engine, claim)
