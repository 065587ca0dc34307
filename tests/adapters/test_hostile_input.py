"""Hostile input through the commands: each a coded error on stderr and exit code 2, nothing on stdout, no crash,
and no patient data (names, member ids, birth dates) in what is printed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.adapters.conftest import EXAMPLE_837P, EXAMPLE_FHIR, FHIR_SAMPLES, X12_SAMPLES
from worker.cli import main
from worker.exit_codes import ExitCode

# Patient data in the files below: none of it may be printed.
PATIENT_DATA = (b"MBR-EX-0014", b"19610412", b"1961-04-12", b"030005074A", b"DOE", b"JON", b"19261111", b"PATIENT")


def _run(capsysbinary: pytest.CaptureFixture[bytes], *argv: str) -> tuple[int, bytes, bytes]:
    code = main(list(argv))
    captured = capsysbinary.readouterr()
    for secret in PATIENT_DATA:
        assert secret not in captured.err, secret
    return code, captured.out, captured.err


@pytest.mark.parametrize("command", ["convert", "validate"])
def test_a_truncated_interchange_is_refused(
    command: str, tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    text = EXAMPLE_837P.read_bytes()
    truncated = tmp_path / "truncated.x12"
    truncated.write_bytes(text[: text.index(b"LX*2")])

    code, out, err = _run(capsysbinary, command, str(truncated))

    assert code == ExitCode.USAGE
    assert out == b""
    assert b"x12_invalid" in err
    assert b"transaction set (ST/SE): code 2: transaction set trailer missing" in err


def test_a_file_cut_inside_the_isa_header_is_unreadable(
    tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    cut = tmp_path / "cut.x12"
    cut.write_bytes(EXAMPLE_837P.read_bytes()[:60])

    code, out, err = _run(capsysbinary, "convert", str(cut))

    assert (code, out) == (ExitCode.USAGE, b"")
    assert b"x12_unreadable" in err


def test_an_isa_with_shifted_separators_is_unreadable(
    tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    # Given an ISA with one character too many in ISA06: every fixed separator position moves
    text = EXAMPLE_837P.read_text().replace("*EXSUBMITTER01  *", "*EXSUBMITTER01   *", 1)
    shifted = tmp_path / "shifted.x12"
    shifted.write_text(text)

    code, out, err = _run(capsysbinary, "convert", str(shifted))

    assert (code, out) == (ExitCode.USAGE, b"")
    assert b"x12_unreadable" in err


def test_a_segment_count_that_lies_is_refused(tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    lying = tmp_path / "lying.x12"
    lying.write_text(EXAMPLE_837P.read_text().replace("SE*29*0014~", "SE*31*0014~"))

    code, out, err = _run(capsysbinary, "convert", str(lying))

    assert (code, out) == (ExitCode.USAGE, b"")
    assert b"code 4: number of included segments does not match actual count" in err


def test_a_50_mb_file_is_refused_before_it_is_parsed(
    tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    big = tmp_path / "big.x12"
    head = EXAMPLE_837P.read_bytes()
    big.write_bytes(head + b"X" * (50 * 1024 * 1024 - len(head)))

    code, out, err = _run(capsysbinary, "convert", str(big))

    assert (code, out) == (ExitCode.USAGE, b"")
    assert b"too_large" in err


def test_a_fhir_bundle_of_10000_entries_is_refused(tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    bundle = json.loads(EXAMPLE_FHIR.read_text())
    patient = next(entry for entry in bundle["entry"] if entry["resource"]["resourceType"] == "Patient")
    bundle["entry"] = bundle["entry"] + [patient] * (10_000 - len(bundle["entry"]))
    source = tmp_path / "huge-bundle.json"
    source.write_text(json.dumps(bundle))

    code, out, err = _run(capsysbinary, "validate", str(source))

    assert (code, out) == (ExitCode.USAGE, b"")
    assert b"fhir_too_many_entries" in err


def test_a_fhir_claim_of_the_wrong_version_is_refused(capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    code, out, err = _run(capsysbinary, "validate", str(FHIR_SAMPLES / "claim-example-professional.pre-r4.json"))

    assert (code, out) == (ExitCode.USAGE, b"")
    assert b"fhir_invalid" in err


def test_an_invalid_interchange_prints_no_value_from_the_file(capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    # pyx12 logs its errors with the offending values; none may reach stderr (_run checks PATIENT_DATA).
    code, out, err = _run(capsysbinary, "convert", str(X12_SAMPLES / "demo.837i"))

    assert (code, out) == (ExitCode.USAGE, b"")
    assert b"17111" not in err  # the ZIP code pyx12's message quotes
    assert b"segment N4 at position 10, element 03: code 7: invalid code value" in err


def test_a_binary_file_is_not_taken_for_a_claim_file(
    tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    binary = tmp_path / "binary.x12"
    binary.write_bytes(b"ISA" + bytes(range(256)) * 4)

    code, out, _ = _run(capsysbinary, "convert", str(binary), "--input-format", "x12")

    assert (code, out) == (ExitCode.USAGE, b"")
