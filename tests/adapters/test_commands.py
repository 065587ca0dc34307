"""`claims-worker convert`, and `validate`/`publish` on X12 and FHIR files: detection by content, the round trip
837P -> convert -> validate, and the headers published with each converted claim (real Kafka)."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import pytest
from kafka import KafkaConsumer
from kafka.structs import TopicPartition

from adapters import records as headers
from adapters.convert import InputFormat, detect_format
from tests.adapters.conftest import EXAMPLE_837I, EXAMPLE_837P, EXAMPLE_FHIR, EXAMPLES
from worker.cli import main
from worker.exit_codes import ExitCode

AT = "2026-11-27T12:00:00Z"
CLAIMS_JSONL = EXAMPLES / "claims.jsonl"


def test_content_tells_the_format() -> None:
    assert detect_format(EXAMPLE_837P.read_bytes()) is InputFormat.X12
    assert detect_format(b"\xef\xbb\xbf\r\n" + EXAMPLE_837P.read_bytes()) is InputFormat.X12
    assert detect_format(EXAMPLE_FHIR.read_bytes()) is InputFormat.FHIR  # pretty-printed
    assert detect_format(json.dumps(json.loads(EXAMPLE_FHIR.read_text())).encode()) is InputFormat.FHIR
    assert detect_format(CLAIMS_JSONL.read_bytes()[:4096]) is InputFormat.JSON  # cut mid-line
    assert detect_format(b"not json at all\n") is InputFormat.JSON  # JSONL's reader reports such lines


def test_convert_prints_one_claim_event_per_line(capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    assert main(["convert", str(EXAMPLE_837I)]) == ExitCode.OK

    out = capsysbinary.readouterr().out
    (line,) = out.splitlines()
    assert json.loads(line)["claim_id"] == "CLM-EX-0101"


def test_convert_passes_jsonl_through_unchanged(capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    assert main(["convert", str(CLAIMS_JSONL)]) == ExitCode.OK

    assert capsysbinary.readouterr().out == CLAIMS_JSONL.read_bytes()


def test_convert_writes_the_999_when_asked(tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    acknowledgement = tmp_path / "ack.999"

    assert main(["convert", str(EXAMPLE_837P), "--write-999", str(acknowledgement)]) == ExitCode.OK

    capsysbinary.readouterr()
    segments = acknowledgement.read_text().replace("\n", "").split("~")
    assert "AK2*837*0014*005010X222A2" in segments
    assert "IK5*A" in segments


def _verdict_of(capsysbinary: pytest.CaptureFixture[bytes], source: Path, line: int = 1) -> dict[str, object]:
    assert main(["validate", str(source), "--validated-at", AT, "--exit-zero"]) == ExitCode.OK
    verdict: dict[str, object] = json.loads(capsysbinary.readouterr().out.splitlines()[line - 1])
    return verdict


def _comparable(verdict: dict[str, object]) -> tuple[object, ...]:
    findings = verdict["findings"]
    not_evaluated = verdict["not_evaluated"]
    assert isinstance(findings, list)
    assert isinstance(not_evaluated, list)
    return (
        verdict["claim_id"],
        verdict["outcome"],
        [(finding["rule_id"], finding["line_number"], finding["field"]) for finding in findings],
        sorted(skipped["rule_id"] for skipped in not_evaluated),
    )


def test_the_837p_example_round_trips_to_the_verdict_of_its_json_twin(
    tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    # Given the 837P example converted to claim events
    assert main(["convert", str(EXAMPLE_837P)]) == ExitCode.OK
    converted = tmp_path / "converted.jsonl"
    converted.write_bytes(capsysbinary.readouterr().out)

    # When the converted events and the JSON claim CLM-EX-0014 (examples/claims.jsonl line 14) are validated
    from_x12 = _verdict_of(capsysbinary, converted)
    from_json = _verdict_of(capsysbinary, CLAIMS_JSONL, line=14)

    # Then both get the same verdict: outcome, findings and the checks that could not run
    assert from_json["claim_id"] == "CLM-EX-0014"
    assert _comparable(from_x12) == _comparable(from_json)
    assert from_x12["outcome"] == "fail"


def test_validate_reads_x12_directly(capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    verdict = _verdict_of(capsysbinary, EXAMPLE_837P)

    assert verdict["claim_id"] == "CLM-EX-0014"
    assert verdict["source_event_id"] != "evt-ex-0014"
    assert str(verdict["source_event_id"]).startswith("x12-")


def test_validate_reads_a_fhir_bundle_with_its_administration_facts(
    capsysbinary: pytest.CaptureFixture[bytes],
) -> None:
    verdict = _verdict_of(capsysbinary, EXAMPLE_FHIR)

    rule_ids = {finding["rule_id"] for finding in verdict["findings"]}  # type: ignore[attr-defined]
    # The MedicationAdministration supplied the dose and times: only what FHIR has no element for is missing.
    assert "J9353.DOCUMENTATION.ADMINISTRATION_MISSING" not in rule_ids
    assert "J9353.DOCUMENTATION.DISCARDED_MG_MISSING" in rule_ids
    assert not {"J9353.UNITS.DOSE_ABOVE_LABEL", "J9353.UNITS.DOSE_BELOW_LABEL"} & {
        skipped["rule_id"]
        for skipped in verdict["not_evaluated"]  # type: ignore[attr-defined]
    }


def test_validate_keeps_one_output_line_per_jsonl_line_from_stdin(
    capsysbinary: pytest.CaptureFixture[bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    data = CLAIMS_JSONL.read_bytes()
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))

    assert main(["validate", "-", "--validated-at", AT, "--exit-zero"]) == ExitCode.OK

    assert len(capsysbinary.readouterr().out.splitlines()) == len(data.splitlines())


@pytest.mark.kafka
@pytest.mark.timeout(120)
def test_publish_sends_each_converted_claim_with_its_source_headers(
    kafka_bootstrap: str, new_topic: object, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    topic = new_topic("in")  # type: ignore[operator]
    monkeypatch.setenv("CLAIMS_BOOTSTRAP_SERVERS", kafka_bootstrap)

    assert main(["publish", str(EXAMPLE_837P), "--topic", topic]) == ExitCode.OK
    assert "published 1 records" in capsys.readouterr().out

    consumer = KafkaConsumer(bootstrap_servers=kafka_bootstrap, auto_offset_reset="earliest", enable_auto_commit=False)
    try:
        consumer.assign([TopicPartition(topic, 0)])
        received = []
        for _ in range(50):
            for batch in consumer.poll(timeout_ms=200).values():
                received.extend(batch)
            if received:
                break
    finally:
        consumer.close()
    (record,) = received
    assert record.key == b"CLM-EX-0014"
    assert json.loads(record.value)["claim_id"] == "CLM-EX-0014"
    sent = dict(record.headers)
    assert sent[headers.SOURCE_FORMAT] == b"x12-837p"
    assert sent[headers.X12_INTERCHANGE_CONTROL_NUMBER] == b"000000014"
    assert sent[headers.X12_TRANSACTION_CONTROL_NUMBER] == b"0014"


def test_publish_of_a_file_that_breaks_the_guide_sends_nothing_and_needs_no_broker(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CLAIMS_BOOTSTRAP_SERVERS", "127.0.0.1:9")  # nothing listens: a connect would fail

    code = main(["publish", str(EXAMPLES.parent / "tests" / "adapters" / "samples" / "x12" / "demo.837i")])

    assert code == ExitCode.USAGE
    assert "x12_invalid" in capsys.readouterr().err
