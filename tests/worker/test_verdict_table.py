"""The verdict table of `validate --format table` and `make run` (worker/demo.py): one renderer, every detail (U7)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from schemas.verdict import ClaimValidated, SourceRecord
from tests.worker.conftest import REPO_ROOT
from worker import demo
from worker.cli import main
from worker.routing import DLQ_ERROR, DLQ_REASON, DLQ_SOURCE_OFFSET, DLQ_SOURCE_PARTITION, DLQ_SOURCE_TOPIC
from worker.topic_reader import TopicRecord

EXAMPLES = REPO_ROOT / "examples" / "claims.jsonl"
AT = "2026-11-27T12:00:00Z"


def _validate(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    main(["validate", str(EXAMPLES), "--validated-at", AT, "--no-progress", *argv])
    return capsys.readouterr().out


def _verdicts(capsys: pytest.CaptureFixture[str]) -> dict[str, ClaimValidated]:
    verdicts = [json.loads(line) for line in _validate(capsys).splitlines()]
    return {v["claim_id"]: ClaimValidated.model_validate(v) for v in verdicts if "claim_id" in v}


def _block(text: str, claim_id: str) -> list[str]:
    """The lines of one claim in a table: its row and the indented lines under it."""
    lines = text.splitlines()
    start = next(index for index, line in enumerate(lines) if f" {claim_id} " in f"{line} ")
    end = start + 1
    while end < len(lines) and lines[end].startswith("        ") and lines[end].strip():
        end += 1
    return lines[start:end]


def test_the_validate_table_shows_severity_line_rule_codes_message_and_fix(
    capsys: pytest.CaptureFixture[str],
) -> None:
    [finding] = _verdicts(capsys)["CLM-EX-0004"].findings
    block = _block(_validate(capsys, "--format", "table"), "CLM-EX-0004")
    text = " ".join(" ".join(line.split()) for line in block[1:])

    assert "fail (1 error)" in block[0]
    head = block[1].split()
    assert head[:3] == ["error", "line", "1"]
    assert "J9353.WASTE.JZ_MISSING" in head
    assert "CARC CO-16" in block[1]
    assert "RARC N822" in block[1]
    assert " ".join(finding.message.split()) in text
    assert f"fix: {' '.join(finding.provider_action.split())}" in text


def test_a_pass_with_warnings_says_how_many(capsys: pytest.CaptureFixture[str]) -> None:
    block = _block(_validate(capsys, "--format", "table"), "CLM-EX-0015")

    assert block[0].split()[-3:] == ["pass", "(3", "warnings)"]
    assert sum(line.split()[0] == "warning" for line in block[1:] if line.split()) == 3


def test_a_carc_without_a_group_code_is_shown_alone(capsys: pytest.CaptureFixture[str]) -> None:
    block = _block(_validate(capsys, "--format", "table"), "CLM-EX-0015")

    [unusual] = [line for line in block if "CLAIM.PLACE_OF_SERVICE.UNUSUAL" in line]
    assert "CARC 5" in unusual
    assert "RARC" not in unusual


def _demo_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> demo.DemoRun:
    # Given the verdicts `validate` gives examples 4 and 15 as the worker's outputs, and a dead letter of line 18
    lines = EXAMPLES.read_bytes().splitlines()
    verdicts = _verdicts(capsys)
    placed = [(0, 0), (0, 1), (0, 2)]
    outputs = [
        TopicRecord("pass", 0, 0, b"CLM-EX-0015", verdicts["CLM-EX-0015"].model_copy(
            update={"source": SourceRecord(topic="in", partition=0, offset=1)}).model_dump_json().encode(), {}),
        TopicRecord("fail", 0, 0, b"CLM-EX-0004", verdicts["CLM-EX-0004"].model_copy(
            update={"source": SourceRecord(topic="in", partition=0, offset=0)}).model_dump_json().encode(), {}),
        TopicRecord("dlq", 0, 0, None, lines[17], {
            DLQ_REASON: b"not_json", DLQ_ERROR: b"Expecting value", DLQ_SOURCE_TOPIC: b"in",
            DLQ_SOURCE_PARTITION: b"0", DLQ_SOURCE_OFFSET: b"2"}),
    ]  # fmt: skip
    return demo.DemoRun([lines[3], lines[14], lines[17]], placed, outputs, {}, 9108, 0, tmp_path / "worker.log")


def _report(run: demo.DemoRun) -> str:
    out = io.StringIO()
    demo._report(run, out)
    return out.getvalue()


def test_the_demo_report_shows_every_finding_detail_and_the_warnings_of_a_pass(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = _report(_demo_run(tmp_path, capsys))

    assert "pass (3 warnings)" in _block(text, "CLM-EX-0015")[0]
    block = _block(text, "CLM-EX-0004")
    assert "CARC CO-16" in block[1]
    assert any("fix: " in line for line in block)
    assert "dead letter: not_json: Expecting value" in text


def test_the_demo_and_validate_render_a_verdict_alike(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = _demo_run(tmp_path, capsys)
    table = _validate(capsys, "--format", "table")
    text = _report(run)

    for claim_id in ("CLM-EX-0004", "CLM-EX-0015"):
        assert _block(text, claim_id)[1:] == _block(table, claim_id)[1:]
        assert _block(text, claim_id)[0].split()[1:] == _block(table, claim_id)[0].split()[1:]
