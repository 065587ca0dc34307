"""`claims-worker validate` with claim history: the claims of a file judged in file order, in memory or in a
directory that lasts from run to run; `--no-history` and CLAIMS_HISTORY=off judge each claim alone."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rules.engine import RuleEngine, load_engine
from tests.rules.test_history_sequences import SEQUENCES, Sequence, fold
from tests.worker.history.test_history_loop import history_findings
from worker.cli import main
from worker.exit_codes import ExitCode

pytestmark = pytest.mark.timeout(60)

AT = "2026-11-27T12:00:00Z"
KEY = "offline-history-key-0123456789"


@pytest.fixture(scope="module")
def engine() -> RuleEngine:
    return load_engine()


def _write(tmp_path: Path, documents: list[dict[str, object]], name: str = "claims.jsonl") -> Path:
    path = tmp_path / name
    path.write_text("".join(json.dumps(document) + "\n" for document in documents), encoding="utf-8")
    return path


def _validate(capsysbinary: pytest.CaptureFixture[bytes], *argv: str) -> tuple[int, list[bytes]]:
    code = main(["validate", *argv, "--validated-at", AT])
    return code, capsysbinary.readouterr().out.splitlines()


@pytest.mark.parametrize("sequence", SEQUENCES, ids=[sequence.name for sequence in SEQUENCES])
def test_validate_gives_each_claim_of_a_file_the_history_findings_of_the_rules_fold(
    sequence: Sequence, engine: RuleEngine, tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    documents = [claim.document for claim in sequence.claims]
    path = _write(tmp_path, documents)

    code, lines = _validate(capsysbinary, str(path))

    expected = fold(engine, documents)
    # Every line is processed; like a linter, validate exits 6 when a claim fails (issue 17, U2).
    failed = any(verdict.outcome.value == "fail" for verdict in expected)
    assert code == (ExitCode.RECORDS_FAILED if failed else ExitCode.OK)
    assert [history_findings(line, engine) for line in lines] == [sorted(claim.expect) for claim in sequence.claims]
    assert [json.loads(line)["outcome"] for line in lines] == [verdict.outcome.value for verdict in expected]


def _duplicates() -> list[dict[str, object]]:
    [sequence] = [s for s in SEQUENCES if s.name == "exact_duplicate_on_another_claim"]
    return [claim.document for claim in sequence.claims]


def test_no_history_judges_each_claim_alone(
    engine: RuleEngine, tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    path = _write(tmp_path, _duplicates())

    _, lines = _validate(capsysbinary, str(path), "--no-history")

    assert [history_findings(line, engine) for line in lines] == [[], []]


def test_claims_history_off_in_the_environment_judges_each_claim_alone(
    engine: RuleEngine, tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLAIMS_HISTORY", "off")
    path = _write(tmp_path, _duplicates())

    _, lines = _validate(capsysbinary, str(path))

    assert [history_findings(line, engine) for line in lines] == [[], []]


def test_a_history_dir_keeps_history_from_one_run_to_the_next(
    engine: RuleEngine, tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLAIMS_HISTORY_KEY", KEY)
    first, second = _duplicates()
    store = tmp_path / "history"

    _, lines_1 = _validate(capsysbinary, str(_write(tmp_path, [first], "day-1.jsonl")), "--history-dir", str(store))
    _, lines_2 = _validate(capsysbinary, str(_write(tmp_path, [second], "day-2.jsonl")), "--history-dir", str(store))

    assert history_findings(lines_1[0], engine) == []
    assert history_findings(lines_2[0], engine) == ["J9353.DUPLICATE.EXACT", "J9353.DUPLICATE.EXACT"]


def test_a_history_dir_without_the_key_is_a_configuration_error(
    tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CLAIMS_HISTORY_KEY", raising=False)
    path = _write(tmp_path, _duplicates())

    code = main(["validate", str(path), "--history-dir", str(tmp_path / "history")])

    assert code == ExitCode.CONFIG
    assert b"CLAIMS_HISTORY_KEY" in capsysbinary.readouterr().err
    assert not (tmp_path / "history").exists()
