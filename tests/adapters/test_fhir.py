"""FHIR R4 Claim conversion (fhir.resources R4B models): our example Bundle field by field, a lone Claim with
contained resources, and Claims that are not R4."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from adapters import records as headers
from adapters.convert import Conversion, InputFormat
from adapters.errors import ConversionError, FailureCode
from tests.adapters.conftest import EXAMPLE_FHIR, FHIR_SAMPLES, documents


def _bundle() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(EXAMPLE_FHIR.read_text())
    return document


def _resource(bundle: dict[str, Any], kind: str) -> dict[str, Any]:
    resource: dict[str, Any] = next(e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == kind)
    return resource


def test_the_example_bundle_fills_every_field_the_mapping_reads(convert: Callable[..., Conversion]) -> None:
    (claim,) = documents(convert(EXAMPLE_FHIR.read_bytes()))

    assert claim["event_id"].startswith("fhir-")
    assert claim["claim_id"] == "CLM-EX-0201"  # Claim.identifier
    assert claim["claim_type"] == "professional"
    assert claim["submitted_on"] == "2026-11-20"  # Claim.created
    assert claim["payer"] == {"id": "MEDICARE-JL", "type": "medicare", "name": "Medicare Part B (Novitas JL)"}
    assert claim["patient"] == {"member_id": "MBR-EX-0201", "birth_date": "1961-04-12", "weight_kg": 70.0}
    assert claim["billing_provider"] == {"npi": "1234567893"}
    assert claim["rendering_provider"] == {"npi": "1987654328"}
    assert claim["place_of_service"] == "11"
    assert claim["diagnoses"] == ["C50.911", "Z51.12"]
    drug, waste, infusion = claim["lines"]
    assert drug["procedure_code"] == "J9353"
    assert drug["units"] == 210.0
    assert drug["charge"] == "9450.0"
    assert drug["service_date"] == "2026-11-02"
    assert drug["diagnosis_pointers"] == [1, 2]  # item.diagnosisSequence
    assert drug["ndc"] == {"code": "70720002201", "quantity": 42.0, "unit": "ML"}  # item.detail.productOrService
    assert drug["administration"] == {
        "drug": "margetuximab-cmkb",
        "administered_mg": 1050.0,  # MedicationAdministration.dosage.dose
        "dose_mg": 1050.0,  # the MedicationRequest it names
        "started_at": "2026-11-02T09:00:00-05:00",
        "ended_at": "2026-11-02T09:40:00-05:00",
    }
    assert waste["modifiers"] == ["JW"]
    assert "administration" not in waste  # item 2 names no supportingInfo
    assert infusion["procedure_code"] == "96413"


def test_a_prior_authorization_comes_from_the_focal_insurance(convert: Callable[..., Conversion]) -> None:
    bundle = _bundle()
    _resource(bundle, "Claim")["insurance"][0]["preAuthRef"] = ["PA-EX-0201"]

    (claim,) = documents(convert(json.dumps(bundle).encode()))

    assert claim["prior_authorization"] == {"number": "PA-EX-0201"}


def test_a_weight_in_pounds_is_converted_to_kilograms(convert: Callable[..., Conversion]) -> None:
    bundle = _bundle()
    _resource(bundle, "Observation")["valueQuantity"] = {"value": 154.32, "unit": "lb", "code": "[lb_av]"}

    (claim,) = documents(convert(json.dumps(bundle).encode()))

    assert claim["patient"]["weight_kg"] == pytest.approx(70.0, abs=0.01)


def test_fields_without_a_source_are_left_out(convert: Callable[..., Conversion]) -> None:
    bundle = _bundle()
    bundle["entry"] = [entry for entry in bundle["entry"] if entry["resource"]["resourceType"] == "Claim"]

    (claim,) = documents(convert(json.dumps(bundle).encode()))

    assert claim["patient"] == {}
    assert "type" not in claim["payer"]
    assert "billing_provider" not in claim
    assert "administration" not in claim["lines"][0]


def test_a_lone_claim_reads_its_contained_resources(convert: Callable[..., Conversion]) -> None:
    bundle = _bundle()
    claim = _resource(bundle, "Claim")
    patient = {**_resource(bundle, "Patient"), "id": "p"}
    claim["contained"] = [patient]
    claim["patient"] = {"reference": "#p"}
    claim["diagnosis"][1]["diagnosisCodeableConcept"]["coding"][0]["system"] = "http://hl7.org/fhir/sid/icd-9-cm"
    claim["diagnosis"][1]["diagnosisCodeableConcept"]["coding"][0]["code"] = "E888.9"

    conversion = convert(json.dumps(claim).encode())

    (document,) = documents(conversion)
    assert document["patient"] == {"birth_date": "1961-04-12"}
    assert document["diagnoses"] == ["C50.911", "ICD9E888.9"]  # an ICD-9 E code never passes for ICD-10-CM E88.89
    assert dict(conversion.records[0].headers) == {
        headers.SOURCE_FORMAT: b"fhir-r4",
        headers.FHIR_CLAIM_ID: b"claim-ex-0201",
    }


def test_bundle_records_name_the_bundle_and_the_entry(convert: Callable[..., Conversion]) -> None:
    (record,) = convert(EXAMPLE_FHIR.read_bytes()).records

    assert record.key == b"CLM-EX-0201"
    assert dict(record.headers)[headers.FHIR_BUNDLE_ID] == b"bundle-ex-0201"
    assert dict(record.headers)[headers.FHIR_ENTRY_INDEX] == b"0"


def test_a_claim_of_an_older_fhir_version_is_refused_naming_the_fields(convert: Callable[..., Conversion]) -> None:
    with pytest.raises(ConversionError) as raised:
        convert((FHIR_SAMPLES / "claim-example-professional.pre-r4.json").read_bytes())

    assert raised.value.code is FailureCode.FHIR_INVALID
    assert "item.0.service (extra_forbidden)" in raised.value.message  # R4 calls it productOrService
    assert "insurance (missing)" in raised.value.message  # R4 renamed coverage to insurance
    assert "happypdocs" not in raised.value.message
    assert "8612345" not in raised.value.message


def test_a_resource_that_is_not_a_claim_is_refused(convert: Callable[..., Conversion]) -> None:
    with pytest.raises(ConversionError) as raised:
        convert(json.dumps(_resource(_bundle(), "Patient")).encode(), InputFormat.FHIR)

    assert raised.value.code is FailureCode.FHIR_UNSUPPORTED


def test_a_bundle_without_a_claim_is_refused(convert: Callable[..., Conversion]) -> None:
    bundle = _bundle()
    bundle["entry"] = bundle["entry"][1:]

    with pytest.raises(ConversionError) as raised:
        convert(json.dumps(bundle).encode())

    assert raised.value.code is FailureCode.FHIR_NO_CLAIM
