"""Our 837P/837I examples (examples/), the fields the public samples do not carry (REF*G1, REF*F8, frequency 7,
modifiers), determinism of event ids, and the map cache."""

from __future__ import annotations

from collections.abc import Callable

from adapters import records as headers
from adapters.convert import Conversion, InputFormat, convert_bytes
from adapters.x12.maps import X12Maps
from tests.adapters.conftest import EXAMPLE_837I, EXAMPLE_837P, X12_SAMPLES, documents, with_segments_replaced


def test_the_837p_example_converts_to_the_claim_of_example_line_14(convert: Callable[..., Conversion]) -> None:
    (claim,) = documents(convert(EXAMPLE_837P.read_bytes()))

    assert claim["claim_id"] == "CLM-EX-0014"
    assert claim["payer"] == {"id": "MEDICARE-JL", "name": "Medicare Part B (Novitas JL)", "type": "medicare"}
    assert claim["diagnoses"] == ["C50911"]  # ABK, no dot in X12 (the contract prints it C50.911)
    drug, administration = claim["lines"]
    assert drug["procedure_code"] == "J9353"
    assert drug["modifiers"] == ["JZ"]  # SV101-3
    assert drug["units"] == 210.0
    assert drug["ndc"] == {"code": "70720002201", "quantity": 42.0, "unit": "ML"}
    assert "administration" not in drug  # an 837 carries no administration record
    assert administration["procedure_code"] == "96413"
    assert "weight_kg" not in claim["patient"]


def test_the_837i_example_is_an_outpatient_bill_with_a_waste_line(convert: Callable[..., Conversion]) -> None:
    (claim,) = documents(convert(EXAMPLE_837I.read_bytes()))

    assert claim["claim_type"] == "institutional"
    assert claim["type_of_bill"] == "131"
    assert [(line["procedure_code"], line["modifiers"], line["units"]) for line in claim["lines"]] == [
        ("J9353", [], 210.0),
        ("J9353", ["JW"], 40.0),
        ("96413", [], 1.0),
    ]
    assert [line.get("ndc", {}).get("quantity") for line in claim["lines"]] == [42.0, 8.0, None]


def _replacement_of_example_837p() -> bytes:
    text = EXAMPLE_837P.read_text()
    return with_segments_replaced(
        text,
        {
            "CLM*CLM-EX-0014*9760***11:B:1*Y*A*Y*Y": (
                "CLM*CLM-EX-0014R*9760***11:B:7*Y*A*Y*Y~REF*F8*PAYERICN0014~REF*G1*PA-EX-0014"
            ),
            "SV1*HC:J9353:JZ*9450*UN*210*11**1": "SV1*HC:J9353:JZ:76:77:79*9450*UN*210*11**1",
        },
    ).encode()


def test_a_replacement_claim_names_its_original_and_its_prior_authorization(
    convert: Callable[..., Conversion],
) -> None:
    conversion = convert(_replacement_of_example_837p())

    assert conversion.x12_report is not None
    assert conversion.x12_report.valid, conversion.x12_report.issues
    (claim,) = documents(conversion)
    assert claim["frequency_code"] == "7"  # CLM05-3
    assert claim["original_claim_id"] == "PAYERICN0014"  # REF*F8
    assert claim["prior_authorization"] == {"number": "PA-EX-0014"}  # REF*G1
    assert claim["lines"][0]["modifiers"] == ["JZ", "76", "77", "79"]  # SV101-3 to SV101-6


def test_reading_a_file_again_gives_the_same_events(maps: X12Maps) -> None:
    data = (X12_SAMPLES / "demo.drug.example10.1.837").read_bytes()

    first = convert_bytes(data, InputFormat.X12, maps=maps)
    again = convert_bytes(data, InputFormat.X12, maps=X12Maps())

    assert [record.value for record in first.records] == [record.value for record in again.records]


def test_another_transaction_control_number_gives_another_event_id(convert: Callable[..., Conversion]) -> None:
    text = EXAMPLE_837P.read_text()
    other = text.replace("ST*837*0014*", "ST*837*0015*").replace("SE*29*0014~", "SE*29*0015~")

    (original,) = documents(convert(text.encode()))
    (renumbered,) = documents(convert(other.encode()))

    assert original["claim_id"] == renumbered["claim_id"]
    assert original["event_id"] != renumbered["event_id"]


def test_records_carry_the_control_numbers_and_are_keyed_by_claim_id(convert: Callable[..., Conversion]) -> None:
    (record,) = convert(EXAMPLE_837P.read_bytes()).records

    assert record.key == b"CLM-EX-0014"
    assert dict(record.headers) == {
        headers.SOURCE_FORMAT: b"x12-837p",
        headers.X12_VERSION: b"005010X222A2",
        headers.X12_SENDER_ID: b"EXSUBMITTER01",
        headers.X12_INTERCHANGE_CONTROL_NUMBER: b"000000014",
        headers.X12_GROUP_CONTROL_NUMBER: b"14",
        headers.X12_TRANSACTION_CONTROL_NUMBER: b"0014",
        headers.X12_CLAIM_INDEX: b"1",
    }


def test_one_set_of_maps_validates_documents_again_and_again_alike(maps: X12Maps) -> None:
    # Given maps parsed once and reused (pyx12 keeps its counts in the walker, not in the map nodes)
    files = [X12_SAMPLES / "demo.example12.837", EXAMPLE_837P, X12_SAMPLES / "demo.837i", EXAMPLE_837I]
    fresh = [convert_bytes(path.read_bytes(), InputFormat.X12, maps=X12Maps()) for path in files]

    # When the same documents go through the shared maps twice
    shared = [convert_bytes(path.read_bytes(), InputFormat.X12, maps=maps) for path in files * 2]

    # Then every run reports the same errors and makes the same claims as with maps of its own
    expected = [(run.x12_report.issues if run.x12_report else None, run.records) for run in fresh] * 2
    assert [(run.x12_report.issues if run.x12_report else None, run.records) for run in shared] == expected


def test_several_claims_in_one_transaction_each_become_an_event(convert: Callable[..., Conversion]) -> None:
    text = EXAMPLE_837P.read_text()
    start, end = text.index("CLM*"), text.index("SE*")
    second_claim = text[start:end].replace("CLM*CLM-EX-0014*", "CLM*CLM-EX-0014B*")
    doubled = with_segments_replaced(text[:end] + second_claim + text[end:], {})

    conversion = convert(doubled.encode())

    assert conversion.x12_report is not None
    assert conversion.x12_report.valid
    claim_ids = [claim["claim_id"] for claim in documents(conversion)]
    assert claim_ids == ["CLM-EX-0014", "CLM-EX-0014B"]
    assert [dict(record.headers)[headers.X12_CLAIM_INDEX] for record in conversion.records] == [b"1", b"2"]
