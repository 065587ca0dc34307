"""`claims-worker validate` end to end on examples/claims.jsonl, and `claims-worker rules`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from schemas.verdict import ClaimValidated
from worker.cli import main
from worker.exit_codes import ExitCode

REPO_ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = REPO_ROOT / "examples" / "claims.jsonl"
AT = "2026-11-27T12:00:00Z"

# What each example is there to show (examples/claims.jsonl, in order): outcome and the rule ids it must raise.
EXPECTED_EXAMPLES: list[tuple[str, str, set[str]]] = [
    ("CLM-EX-0001", "pass", set()),
    ("CLM-EX-0002", "fail", {"CROSSWALK.DRUG_CODE_MISMATCH.DRUG_NAME", "CROSSWALK.DRUG_CODE_MISMATCH.NDC"}),
    ("CLM-EX-0003", "pass", set()),
    ("CLM-EX-0004", "fail", {"J9353.WASTE.JZ_MISSING"}),
    ("CLM-EX-0005", "fail", {"CLAIM.MODIFIER_25.NOT_ALLOWED_ON_LINE", "CLAIM.MODIFIER_25.MISSING_ON_EM"}),
    ("CLM-EX-0006", "fail", {"J9353.NDC.MISSING"}),
    ("CLM-EX-0007", "pass", set()),
    ("CLM-EX-0008", "fail", {"CLAIM.PRIOR_AUTHORIZATION.MISSING", "CLAIM.TIMELY_FILING.EXPIRED"}),
    ("CLM-EX-0009", "fail", {"J9353.WASTE.JW_NOT_ACCEPTED", "J9353.FREQUENCY.TOO_SOON"}),
    ("CLM-EX-0010", "not_applicable", set()),
    ("CLM-EX-0011", "not_applicable", set()),
    ("CLM-EX-0012", "fail", {"CROSSWALK.CODE.NOC_SPECIFIC_CODE_EXISTS"}),
    ("CLM-EX-0013", "fail", {"J9022.DIAGNOSIS.NOT_INDICATED", "J9022.UNITS.ABOVE_ADMINISTERED"}),
    ("CLM-EX-0014", "fail", {"J9353.DOCUMENTATION.ADMINISTRATION_MISSING"}),
    ("CLM-EX-0015", "pass", {"J9353.ADMINISTRATION.LONG_INFUSION_WITHOUT_96415", "CLAIM.TIMELY_FILING.NEAR_LIMIT"}),
    ("CLM-EX-0016", "pass", set()),
    ("CLM-EX-0017", "fail", {"SCHEMA.MISSING_FIELD", "SCHEMA.WRONG_TYPE"}),
]
DEAD_LETTERS = {18: "not_json", 19: "unsupported_schema_version"}


def _run(capsysbinary: pytest.CaptureFixture[bytes], *argv: str) -> tuple[int, list[bytes], bytes]:
    code = main(["validate", *argv])
    captured = capsysbinary.readouterr()
    return code, captured.out.splitlines(), captured.err


def test_examples_give_one_output_line_per_input_line_in_order(capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    input_lines = EXAMPLES.read_bytes().splitlines()

    code, output, err = _run(capsysbinary, str(EXAMPLES), "--validated-at", AT, "--no-progress")

    assert code == ExitCode.RECORDS_FAILED
    assert err.decode().splitlines() == ["19 records: 5 pass, 10 fail, 2 not applicable, 2 dead letter"]
    assert len(output) == len(input_lines) == len(EXPECTED_EXAMPLES) + len(DEAD_LETTERS)
    for number, line in enumerate(output, start=1):
        document = json.loads(line)
        if number in DEAD_LETTERS:
            assert document == {
                "schema_version": 1,
                "dead_letter": True,
                "reason": DEAD_LETTERS[number],
                "error": document["error"],
                "input_line": number,
            }
            continue
        verdict = ClaimValidated.model_validate(document)
        claim_id, outcome, rule_ids = EXPECTED_EXAMPLES[number - 1]
        assert (verdict.claim_id, verdict.outcome.value) == (claim_id, outcome)
        assert rule_ids <= {finding.rule_id for finding in verdict.findings}
        assert verdict.validated_at.isoformat() == "2026-11-27T12:00:00+00:00"
        assert verdict.source is None


def test_article_example_names_j9022_and_the_converted_units(capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    _, output, _ = _run(capsysbinary, str(EXAMPLES), "--validated-at", AT)

    article = ClaimValidated.model_validate_json(output[1])

    messages = [f.message for f in article.findings if f.rule_id == "CROSSWALK.DRUG_CODE_MISMATCH.DRUG_NAME"]
    assert messages
    assert "1200 mg = 120 units of J9022, not 240 units of J9353" in messages[0]


def test_fixed_validation_time_makes_output_reproducible(capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    _, first, _ = _run(capsysbinary, str(EXAMPLES), "--validated-at", AT)
    _, second, _ = _run(capsysbinary, str(EXAMPLES), "--validated-at", AT)

    assert first == second


def test_blank_lines_are_skipped_and_counted(tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    example_lines = EXAMPLES.read_bytes().splitlines()
    path = tmp_path / "claims.jsonl"
    path.write_bytes(b"\n".join([example_lines[0], b"", b"   ", example_lines[17], b""]) + b"\n")

    code, output, _ = _run(capsysbinary, str(path), "--validated-at", AT)

    assert code == ExitCode.RECORDS_FAILED  # line 4 is a dead letter
    assert len(output) == 2
    assert json.loads(output[0])["claim_id"] == "CLM-EX-0001"
    assert json.loads(output[1])["input_line"] == 4


def test_table_format_summarises_outcomes(capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    code, output, err = _run(capsysbinary, str(EXAMPLES), "--format", "table", "--validated-at", AT)
    text = b"\n".join(output).decode()

    assert code == ExitCode.RECORDS_FAILED
    assert "CLM-EX-0002" in text
    assert "CROSSWALK.DRUG_CODE_MISMATCH.DRUG_NAME" in text
    assert "dead letter: not_json" in text
    assert err.decode().rstrip().endswith("19 records: 5 pass, 10 fail, 2 not applicable, 2 dead letter")


def test_progress_goes_to_stderr_when_asked(capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    code, output, err = _run(capsysbinary, str(EXAMPLES), "--progress", "--progress-every", "10", "--exit-zero")

    assert code == ExitCode.OK
    assert len(output) == 19
    assert [line.split(b",")[0] for line in err.splitlines()] == [
        b"validate: 10 lines",
        b"validate: 19 lines",
        b"19 records: 5 pass",
    ]


def test_line_over_the_size_limit_is_a_too_large_dead_letter(capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    code, output, _ = _run(capsysbinary, str(EXAMPLES), "--max-bytes", "1500", "--validated-at", AT)

    reasons = [json.loads(line).get("reason") for line in output]
    assert code == ExitCode.RECORDS_FAILED
    assert "too_large" in reasons
    assert len(output) == 19


def test_invalid_payer_policy_file_exits_with_config(
    tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    policy = tmp_path / "payers.yaml"
    policy.write_text("payers:\n  - {id: P1, type: commercial}\n", encoding="utf-8")

    code, output, err = _run(capsysbinary, str(EXAMPLES), "--payer-policy-file", str(policy))

    assert code == ExitCode.CONFIG
    assert output == []
    assert b"invalid policy" in err
    assert b"payers.0.name" in err


def test_payer_policy_file_changes_the_ruleset_version(
    tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    policy = tmp_path / "payers.yaml"
    policy.write_text("payers: []\n", encoding="utf-8")

    code, output, _ = _run(capsysbinary, str(EXAMPLES), "--payer-policy-file", str(policy), "--validated-at", AT)

    assert code == ExitCode.RECORDS_FAILED
    assert json.loads(output[0])["ruleset"]["version"].startswith("1.3.0+payers.")


def test_missing_input_file_is_a_usage_error(tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    code, output, err = _run(capsysbinary, str(tmp_path / "absent.jsonl"))

    assert code == ExitCode.USAGE
    assert output == []
    assert b"cannot read" in err


def test_naive_validation_time_is_rejected_by_the_parser(capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    with pytest.raises(SystemExit) as raised:
        main(["validate", str(EXAMPLES), "--validated-at", "2026-11-27T12:00:00"])

    assert raised.value.code == ExitCode.USAGE
    assert b"UTC offset" in capsysbinary.readouterr().err


def test_console_script_reads_stdin() -> None:
    # The real entry point in a fresh interpreter, with claims on standard input and progress forced on.
    lines = EXAMPLES.read_bytes().splitlines()
    stdin = b"\n".join([lines[0], lines[9], lines[17]]) + b"\n"

    result = subprocess.run(
        [sys.executable, "-m", "worker.cli", "validate", "-", "--validated-at", AT, "--no-progress"],
        input=stdin,
        capture_output=True,
        cwd=REPO_ROOT,
        timeout=120,
        check=False,
    )

    assert result.returncode == ExitCode.RECORDS_FAILED, result.stderr  # the dead letter
    outcomes = [json.loads(line).get("outcome", "dead_letter") for line in result.stdout.splitlines()]
    assert outcomes == ["pass", "not_applicable", "dead_letter"]
    assert result.stderr == b"3 records: 1 pass, 0 fail, 1 not applicable, 1 dead letter\n"


def test_rules_command_lists_every_rule(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["rules", "--format", "jsonl"])
    rules = [json.loads(line) for line in capsys.readouterr().out.splitlines()]

    assert code == ExitCode.OK
    ids = [rule["rule_id"] for rule in rules]
    assert ids == sorted(ids)
    assert {"J9353.WASTE.JW_LINE_MISSING", "J9022.WASTE.JW_LINE_MISSING", "CLAIM.TIMELY_FILING.EXPIRED"} <= set(ids)
    assert "J9022.UNITS.DOSE_BELOW_LABEL" not in ids
    missing = next(rule for rule in rules if rule["rule_id"] == "J9353.WASTE.JW_LINE_MISSING")
    assert (missing["category"], missing["severity"], missing["carc"], missing["rarc"]) == (
        "waste",
        "error",
        "16",
        ["N822"],
    )
    assert missing["group_code"] == "CO"
    assert missing["group_code_confidence"] == "L"
    assert "[CMS-JWJZ]" in missing["source"]


def test_rules_command_text_names_the_ruleset(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["rules"])
    out = capsys.readouterr().out

    assert code == ExitCode.OK
    assert out.startswith("Rule set j9353 1.3.0: ")
    assert "J9353.UNITS.DOSE_ABOVE_LABEL  [units, error; CARC 153" in out


# --- exit status and summary (issue 17, U2 and U11) ----------------------------------------------------------------


def test_a_file_with_failing_or_dead_lettered_records_exits_with_records_failed(
    capsysbinary: pytest.CaptureFixture[bytes],
) -> None:
    code, output, _ = _run(capsysbinary, str(EXAMPLES), "--validated-at", AT)

    assert code == ExitCode.RECORDS_FAILED
    assert len(output) == 19  # the report is complete all the same


def test_exit_zero_keeps_status_0_when_records_fail(capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    code, output, _ = _run(capsysbinary, str(EXAMPLES), "--validated-at", AT, "--exit-zero")

    assert code == ExitCode.OK
    assert len(output) == 19


def test_only_a_dead_letter_is_enough_for_records_failed(
    tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    lines = EXAMPLES.read_bytes().splitlines()
    path = tmp_path / "claims.jsonl"
    path.write_bytes(lines[0] + b"\n" + lines[17] + b"\n")  # a pass and a not_json dead letter

    code, _, _ = _run(capsysbinary, str(path), "--validated-at", AT)

    assert code == ExitCode.RECORDS_FAILED


def test_passing_and_not_applicable_claims_exit_0(tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    lines = EXAMPLES.read_bytes().splitlines()
    path = tmp_path / "claims.jsonl"
    path.write_bytes(b"\n".join([lines[0], lines[9], lines[14]]) + b"\n")  # pass, not_applicable, pass + warnings

    code, output, _ = _run(capsysbinary, str(path), "--validated-at", AT)

    assert code == ExitCode.OK
    assert [json.loads(line)["outcome"] for line in output] == ["pass", "not_applicable", "pass"]


def test_records_failed_has_a_code_of_its_own() -> None:
    taken_before = {ExitCode.OK, ExitCode.FAILURE, ExitCode.USAGE, ExitCode.CONFIG, ExitCode.BROKER_OUTAGE}
    assert ExitCode.RECORDS_FAILED not in taken_before | {ExitCode.FORCED_EXIT}
    assert len({int(code) for code in ExitCode}) == len(ExitCode)


def test_an_empty_file_reports_zero_records_on_stderr_in_jsonl_mode(
    tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    path = tmp_path / "empty.jsonl"
    path.write_bytes(b"")

    code, output, err = _run(capsysbinary, str(path), "--no-progress")

    assert code == ExitCode.OK
    assert output == []
    assert err.decode().splitlines() == ["0 records: 0 pass, 0 fail, 0 not applicable, 0 dead letter"]


def test_the_summary_goes_to_stderr_and_stdout_stays_the_jsonl_stream(
    capsysbinary: pytest.CaptureFixture[bytes],
) -> None:
    _, output, err = _run(capsysbinary, str(EXAMPLES), "--validated-at", AT, "--no-progress")

    assert all(line.startswith(b"{") for line in output)
    assert err.decode().splitlines() == ["19 records: 5 pass, 10 fail, 2 not applicable, 2 dead letter"]


def test_the_table_summary_goes_to_stderr_too(capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    _, output, err = _run(capsysbinary, str(EXAMPLES), "--format", "table", "--validated-at", AT, "--no-progress")

    assert not any(b"records:" in line for line in output)
    assert err.decode().splitlines() == ["19 records: 5 pass, 10 fail, 2 not applicable, 2 dead letter"]
