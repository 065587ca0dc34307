"""Raw Kafka bytes become a claim, a schema failure of an identifiable claim, or a dead letter; never an exception."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.claim import ClaimFrequency, ClaimType, PayerType
from schemas.parsing import (
    DeadLetter,
    DeadLetterReason,
    ParsedClaim,
    SchemaFailure,
    parse_claim_event,
)


def valid_claim() -> dict[str, Any]:
    return {
        "schema_version": 1,
        "event_id": "evt-0001",
        "claim_id": "CLM-0001",
        "submitted_on": "2026-11-20",
        "payer": {"id": "MEDICARE-JH", "type": "medicare"},
        "patient": {"member_id": "MBR-TEST-1", "birth_date": "1961-04-02", "weight_kg": 70},
        "billing_provider": {"npi": "1234567893"},
        "place_of_service": "11",
        "diagnoses": ["c50.911", "Z5112"],
        "lines": [
            {
                "line_number": 1,
                "service_date": "2026-11-02",
                "procedure_code": "j9353",
                "modifiers": [],
                "units": 210,
                "charge": "12345.60",
                "diagnosis_pointers": [1],
                "ndc": {"code": "70720-0022-01", "quantity": 42, "unit": "ML"},
                "administration": {
                    "drug": "margetuximab-cmkb",
                    "dose_mg": 1050,
                    "administered_mg": 1050,
                    "discarded_mg": 200,
                    "started_at": "2026-11-02T09:00:00-05:00",
                    "ended_at": "2026-11-02T11:05:00-05:00",
                },
            }
        ],
        "an_unknown_field": {"is": "ignored"},
    }


def encode(document: object) -> bytes:
    return json.dumps(document).encode()


def parse_document(document: object) -> ParsedClaim | SchemaFailure | DeadLetter:
    return parse_claim_event(encode(document))


def test_valid_claim_is_parsed_with_codes_normalised() -> None:
    result = parse_document(valid_claim())

    assert isinstance(result, ParsedClaim)
    claim = result.claim
    assert claim.claim_type is ClaimType.PROFESSIONAL
    assert claim.payer.type is PayerType.MEDICARE
    assert claim.diagnoses == ["C50.911", "Z51.12"]
    assert claim.lines[0].procedure_code == "J9353"
    assert str(claim.lines[0].charge) == "12345.60"


def test_modifiers_are_upper_cased() -> None:
    document = valid_claim()
    document["lines"][0]["modifiers"] = ["jw", "Jz"]

    result = parse_document(document)

    assert isinstance(result, ParsedClaim)
    assert result.claim.lines[0].modifiers == ["JW", "JZ"]


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"\xff\xfe not utf-8", DeadLetterReason.NOT_JSON),
        (b'{"schema_version": 1, "claim_id": "C1"', DeadLetterReason.NOT_JSON),
        (b'{"schema_version": 1, "claim_id": "C1", "x": NaN}', DeadLetterReason.NOT_JSON),
        (b"[" * 100_000 + b"]" * 100_000, DeadLetterReason.NOT_JSON),
        (b"[1, 2]", DeadLetterReason.NOT_AN_OBJECT),
        (b'"a string"', DeadLetterReason.NOT_AN_OBJECT),
        (b"42", DeadLetterReason.NOT_AN_OBJECT),
        (b"null", DeadLetterReason.NOT_AN_OBJECT),
        (b'{"claim_id": "C1"}', DeadLetterReason.UNSUPPORTED_SCHEMA_VERSION),
        (b'{"schema_version": 2, "claim_id": "C1"}', DeadLetterReason.UNSUPPORTED_SCHEMA_VERSION),
        (b'{"schema_version": true, "claim_id": "C1"}', DeadLetterReason.UNSUPPORTED_SCHEMA_VERSION),
        (b'{"schema_version": 1.0, "claim_id": "C1"}', DeadLetterReason.UNSUPPORTED_SCHEMA_VERSION),
        (b'{"schema_version": "1", "claim_id": "C1"}', DeadLetterReason.UNSUPPORTED_SCHEMA_VERSION),
        (b'{"schema_version": 1}', DeadLetterReason.MISSING_CLAIM_ID),
        (b'{"schema_version": 1, "claim_id": ""}', DeadLetterReason.MISSING_CLAIM_ID),
        (b'{"schema_version": 1, "claim_id": 17}', DeadLetterReason.MISSING_CLAIM_ID),
    ],
)
def test_unreadable_input_is_a_dead_letter_with_its_reason(raw: bytes, reason: DeadLetterReason) -> None:
    result = parse_claim_event(raw)

    assert isinstance(result, DeadLetter)
    assert result.reason is reason
    assert result.error


def test_a_valid_claim_with_the_version_as_a_boolean_is_not_accepted() -> None:
    document = valid_claim()
    document["schema_version"] = True

    result = parse_document(document)

    assert isinstance(result, DeadLetter)
    assert result.reason is DeadLetterReason.UNSUPPORTED_SCHEMA_VERSION


def test_value_over_the_byte_limit_is_too_large_before_parsing() -> None:
    raw = encode(valid_claim())

    assert isinstance(parse_claim_event(raw, max_bytes=len(raw)), ParsedClaim)
    result = parse_claim_event(raw, max_bytes=len(raw) - 1)
    assert isinstance(result, DeadLetter)
    assert result.reason is DeadLetterReason.TOO_LARGE


def test_wrong_types_of_an_identifiable_claim_are_schema_problems_with_paths() -> None:
    document = valid_claim()
    document["lines"][0]["units"] = "210"
    document["lines"][0]["modifiers"] = ["JWX"]
    document["billing_provider"]["npi"] = "12345"
    del document["payer"]

    result = parse_document(document)

    assert isinstance(result, SchemaFailure)
    assert result.claim_id == "CLM-0001"
    assert result.event_id == "evt-0001"
    by_field = {problem.field: problem for problem in result.problems}
    assert set(by_field) == {"lines[0].units", "lines[0].modifiers[0]", "billing_provider.npi", "payer"}
    assert by_field["lines[0].units"].line_number == 1
    assert by_field["payer"].line_number is None
    assert by_field["payer"].error_type == "missing"


def test_schema_problem_messages_never_echo_the_input_value() -> None:
    document = valid_claim()
    document["patient"]["birth_date"] = "MBR-SECRET-99"

    result = parse_document(document)

    assert isinstance(result, SchemaFailure)
    assert [problem.field for problem in result.problems] == ["patient.birth_date"]
    assert "MBR-SECRET-99" not in result.problems[0].message


def test_professional_claim_without_place_of_service_names_the_field() -> None:
    document = valid_claim()
    del document["place_of_service"]

    result = parse_document(document)

    assert isinstance(result, SchemaFailure)
    assert [problem.field for problem in result.problems] == ["place_of_service"]


def test_institutional_claim_needs_no_place_of_service() -> None:
    document = valid_claim()
    document["claim_type"] = "institutional"
    del document["place_of_service"]

    assert isinstance(parse_document(document), ParsedClaim)


def test_a_claim_without_frequency_code_is_an_original_and_older_events_stay_valid() -> None:
    result = parse_document(valid_claim())

    assert isinstance(result, ParsedClaim)
    assert result.claim.frequency_code is ClaimFrequency.ORIGINAL
    assert (result.claim.original_claim_id, result.claim.type_of_bill) == (None, None)


@pytest.mark.parametrize("code", ["7", "8"])
def test_a_replacement_or_void_names_its_original_claim(code: str) -> None:
    document = {**valid_claim(), "frequency_code": code, "original_claim_id": "CLM-0000"}

    result = parse_document(document)

    assert isinstance(result, ParsedClaim)
    assert result.claim.frequency_code == code
    assert result.claim.original_claim_id == "CLM-0000"


@pytest.mark.parametrize("code", ["7", "8"])
def test_a_replacement_or_void_without_its_original_is_a_schema_problem_naming_the_field(code: str) -> None:
    result = parse_document({**valid_claim(), "frequency_code": code})

    assert isinstance(result, SchemaFailure)
    assert [(problem.field, problem.error_type) for problem in result.problems] == [
        ("original_claim_id", "original_claim_id_required")
    ]


@pytest.mark.parametrize("value", ["2", "", 7, "01"])
def test_a_frequency_code_other_than_1_7_8_is_a_schema_problem(value: object) -> None:
    result = parse_document({**valid_claim(), "frequency_code": value, "original_claim_id": "CLM-0000"})

    assert isinstance(result, SchemaFailure)
    assert [problem.field for problem in result.problems] == ["frequency_code"]


@pytest.mark.parametrize(("value", "accepted"), [("131", True), ("0131", True), ("13", False), ("13A", False)])
def test_type_of_bill_is_three_or_four_digits(value: str, accepted: bool) -> None:
    document = {**valid_claim(), "claim_type": "institutional", "type_of_bill": value}

    result = parse_document(document)

    assert isinstance(result, ParsedClaim) is accepted
    if accepted:
        assert isinstance(result, ParsedClaim)
        assert result.claim.type_of_bill == value


def test_duplicate_line_numbers_are_a_schema_problem() -> None:
    document = valid_claim()
    document["lines"].append(copy.deepcopy(document["lines"][0]))

    result = parse_document(document)

    assert isinstance(result, SchemaFailure)
    assert [problem.field for problem in result.problems] == ["lines"]


def test_claim_without_a_usable_event_id_gets_a_deterministic_one() -> None:
    document = valid_claim()
    document["event_id"] = 12
    raw = encode(document)

    first, second = parse_claim_event(raw), parse_claim_event(raw)

    assert isinstance(first, SchemaFailure)
    assert isinstance(second, SchemaFailure)
    assert first.event_id.startswith("sha256:")
    assert first.event_id == second.event_id


def test_a_number_too_long_for_python_in_an_identifiable_claim_is_a_schema_problem() -> None:
    raw = encode(valid_claim()).replace(b'"units": 210', b'"units": ' + b"9" * 10_000)

    result = parse_claim_event(raw)

    assert isinstance(result, SchemaFailure)
    assert [problem.field for problem in result.problems] == ["lines[0].units"]


def test_too_many_lines_is_a_schema_problem_not_a_crash() -> None:
    document = valid_claim()
    line = document["lines"][0]
    document["lines"] = [{**line, "line_number": n} for n in range(1, 10_001)]

    result = parse_claim_event(encode(document), max_bytes=64 * 1024 * 1024)

    assert isinstance(result, SchemaFailure)
    assert [problem.field for problem in result.problems] == ["lines"]


# --- properties: every input lands in exactly one of the three results ----------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)


@settings(max_examples=500)
@given(st.binary(max_size=512))
def test_arbitrary_bytes_never_raise(raw: bytes) -> None:
    result = parse_claim_event(raw)

    assert isinstance(result, ParsedClaim | SchemaFailure | DeadLetter)
    if isinstance(result, DeadLetter):
        assert result.reason is not DeadLetterReason.INTERNAL_ERROR


@settings(max_examples=500)
@given(json_values)
def test_arbitrary_json_never_raises(document: object) -> None:
    result = parse_document(document)

    assert isinstance(result, ParsedClaim | SchemaFailure | DeadLetter)
    if not isinstance(document, dict):
        assert isinstance(result, DeadLetter)
        assert result.reason is DeadLetterReason.NOT_AN_OBJECT


claim_fields = st.sampled_from(
    [
        "event_id",
        "claim_type",
        "submitted_on",
        "payer",
        "patient",
        "billing_provider",
        "place_of_service",
        "diagnoses",
        "prior_authorization",
        "lines",
    ]
)


@settings(max_examples=500)
@given(st.dictionaries(claim_fields, json_values, max_size=5))
def test_identifiable_claims_with_arbitrary_fields_are_never_dead_letters(overrides: dict[str, object]) -> None:
    document = {**valid_claim(), **overrides}

    result = parse_document(document)

    assert isinstance(result, ParsedClaim | SchemaFailure)
    if isinstance(result, SchemaFailure):
        assert result.claim_id == "CLM-0001"
        assert result.problems


def test_a_number_too_long_for_python_in_an_unknown_field_does_not_reject_a_valid_claim() -> None:
    raw = encode(valid_claim()).replace(b'"is": "ignored"', b'"is": ' + b"7" * 10_000)

    assert isinstance(parse_claim_event(raw), ParsedClaim)
