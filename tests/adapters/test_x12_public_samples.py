"""X12 conversion on public sample files nobody on this team wrote (samples/SOURCES.md): every field the converter
fills is asserted on at least one of them, and the files that break the guide are refused with their 999 errors."""

from __future__ import annotations

from collections.abc import Callable

from adapters import records as headers
from adapters.convert import Conversion
from tests.adapters.conftest import X12_SAMPLES, documents


def _issues(conversion: Conversion) -> set[tuple[str | None, int | None, int | None, int | None, str]]:
    assert conversion.x12_report is not None
    return {
        (issue.segment_id, issue.segment_position, issue.element_position, issue.component_position, issue.code)
        for issue in conversion.x12_report.issues
    }


def test_the_a2_drug_example_meets_the_guide_through_the_a1_map(convert: Callable[..., Conversion]) -> None:
    conversion = convert((X12_SAMPLES / "demo.drug.example10.1.837").read_bytes())

    assert conversion.x12_report is not None
    assert conversion.x12_report.valid
    assert conversion.x12_report.issues == ()
    assert len(conversion.records) == 1


def test_the_drug_example_fills_every_professional_claim_field(convert: Callable[..., Conversion]) -> None:
    (claim,) = documents(convert((X12_SAMPLES / "demo.drug.example10.1.837").read_bytes()))

    assert claim["schema_version"] == 1
    assert claim["event_id"].startswith("x12-")
    assert claim["claim_id"] == "CLMNO12345"  # CLM01
    assert claim["claim_type"] == "professional"  # GS08 005010X222A2
    assert claim["frequency_code"] == "1"  # CLM05-3
    assert claim["place_of_service"] == "11"  # CLM05-1
    assert claim["submitted_on"] == "2004-08-01"  # BHT04
    assert claim["payer"] == {"id": "PLANID12345", "name": "R&R Health Plan", "type": "commercial"}  # SBR09 CI
    assert claim["patient"] == {"member_id": "MBRID12345", "birth_date": "1943-05-01"}  # 2010BA NM109, DMG02
    assert claim["billing_provider"] == {"npi": "1234567893"}  # 2010AA NM109
    assert claim["rendering_provider"] == {"npi": "1122333341"}  # 2310B NM109
    # HI*BK (ICD-9): a numeric ICD-9 code goes through as it is; the rules then name it as not ICD-10-CM.
    assert claim["diagnoses"] == ["03591"]
    first, second = claim["lines"]
    assert first == {
        "line_number": 1,
        "procedure_code": "90782",
        "modifiers": [],
        "charge": "50.00",
        "units": 1.0,
        "diagnosis_pointers": [1],
        "service_date": "2004-07-11",
    }
    assert second["procedure_code"] == "J1550"
    assert second["charge"] == "53.37"
    # Loop 2410: LIN03 and CTP04/CTP05-1, the issue's example (NDC 00026063512, CTP****10.00*ML).
    assert second["ndc"] == {"code": "00026063512", "quantity": 10.0, "unit": "ML"}
    assert "prior_authorization" not in claim
    assert "original_claim_id" not in claim
    assert "type_of_bill" not in claim


def test_a_dependent_patient_takes_the_birth_date_of_loop_2010ca(convert: Callable[..., Conversion]) -> None:
    (claim,) = documents(convert((X12_SAMPLES / "demo.example1.837").read_bytes()))

    assert claim["patient"] == {"member_id": "JS00111223333", "birth_date": "1973-05-01"}  # subscriber's id
    assert "rendering_provider" not in claim  # the file has no 2310B
    assert [line["diagnosis_pointers"] for line in claim["lines"]] == [[1], [1], [2], [2]]
    assert [line["service_date"] for line in claim["lines"]] == ["2006-10-03", "2006-10-03", "2006-10-10", "2006-10-10"]


def test_an_icd9_v_code_cannot_pass_for_an_icd10_code(convert: Callable[..., Conversion]) -> None:
    (claim,) = documents(convert((X12_SAMPLES / "demo.example1.837").read_bytes()))

    # HI*BK:0340*BF:V7389: V73.89 reads like an ICD-10-CM V code, so the ICD-9 letter code is marked.
    assert claim["diagnoses"] == ["0340", "ICD9V7389"]


def test_the_institutional_demo_is_refused_with_its_999_errors(convert: Callable[..., Conversion]) -> None:
    conversion = convert((X12_SAMPLES / "demo.837i").read_bytes())

    assert conversion.records == ()
    issues = _issues(conversion)
    assert ("NM1", 8, 10, None, "10") in issues  # billing provider NPI sent in NM110, marked not used
    assert ("N4", 10, 3, None, "7") in issues  # 5-digit ZIP where the guide wants 9
    assert ("CLM", 20, 6, None, "10") in issues  # CLM06 is not used on an 837I
    assert ("(unrecognised)", 24, None, None, "1") in issues  # `HI:BF:4019*...` is no segment


def test_the_institutional_demo_converted_anyway_fills_the_institutional_fields(
    convert: Callable[..., Conversion],
) -> None:
    conversion = convert((X12_SAMPLES / "demo.837i").read_bytes(), keep_invalid_x12=True)

    (claim,) = documents(conversion)
    assert claim["claim_id"] == "756048Q"
    assert claim["claim_type"] == "institutional"  # GS08 005010X223A3, read with the A2 map
    assert claim["type_of_bill"] == "141"  # CLM05-1 + CLM05-3
    assert claim["frequency_code"] == "1"
    assert "place_of_service" not in claim
    assert claim["payer"] == {"id": "00435", "name": "MEDICARE B", "type": "medicare"}  # SBR09 MB
    assert claim["patient"] == {"member_id": "030005074A", "birth_date": "1926-11-11"}
    assert "billing_provider" not in claim  # NM109 is empty (the NPI is in NM110): left out, not guessed
    assert claim["diagnoses"] == ["3669"]  # HI*BK; the broken `HI:BF:` segments are not placed by the guide
    assert claim["lines"] == [
        {"line_number": 1, "procedure_code": "85025", "modifiers": [], "charge": "13.39", "units": 1.0,
         "service_date": "1996-09-11"},
        {"line_number": 2, "procedure_code": "93005", "modifiers": [], "charge": "76.54", "units": 3.0,
         "service_date": "1996-09-11"},
    ]  # fmt: skip
    source = dict(conversion.records[0].headers)
    assert source[headers.SOURCE_FORMAT] == b"x12-837i"
    assert source[headers.X12_VERSION] == b"005010X223A3"


def test_a_trailer_control_number_that_does_not_match_its_header_is_reported(
    convert: Callable[..., Conversion],
) -> None:
    conversion = convert((X12_SAMPLES / "institutional-claim.837i").read_bytes())

    assert conversion.records == ()
    assert conversion.x12_report is not None
    assert ("transaction", "3") in {(issue.level, issue.code) for issue in conversion.x12_report.issues}


def test_composites_written_with_another_separator_than_isa16_are_refused(convert: Callable[..., Conversion]) -> None:
    # demo.example12.837 declares ':' in ISA16 but writes `11>B>1`-style composites with '>'.
    conversion = convert((X12_SAMPLES / "demo.example12.837").read_bytes())

    assert conversion.records == ()
    issues = _issues(conversion)
    assert ("CLM", 24, 5, 1, "5") in issues  # CLM05-1 `23>B>1` too long for a place of service
    assert ("CLM", 24, 5, 2, "1") in issues  # CLM05-2 missing
    assert ("SV1", 38, None, None, "3") in issues  # no usable SV1


def test_the_999_of_a_refused_file_rejects_its_transaction(convert: Callable[..., Conversion]) -> None:
    conversion = convert((X12_SAMPLES / "demo.example12.837").read_bytes())

    assert conversion.x12_report is not None
    acknowledgement = conversion.x12_report.acknowledgement_999()
    segments = acknowledgement.replace("\n", "").split("~")
    assert "AK2*837*1024*005010X222A2" in segments
    assert "IK3*CLM*24**8" in segments
    assert "IK5*R*5" in segments
    assert "AK9*R*1*1*0" in segments


def test_the_999_of_an_accepted_file_accepts_it(convert: Callable[..., Conversion]) -> None:
    conversion = convert((X12_SAMPLES / "demo.drug.example10.1.837").read_bytes())

    assert conversion.x12_report is not None
    segments = conversion.x12_report.acknowledgement_999().replace("\n", "").split("~")
    assert "IK5*A" in segments
    assert "AK9*A*1*1*1" in segments
