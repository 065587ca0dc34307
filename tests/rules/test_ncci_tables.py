"""The policy directory of CMS edit tables as `validate`, `run` and `rules` see it: the version carries its digest,
a damaged directory is a configuration error, the rules run only with tables for the claim's setting and date.

Every table here is written by the test in CMS's layout; the values are made up, not CMS's.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from rules.engine import PolicyError, RuleEngine, load_engine
from rules.ncci import MANIFEST_NAME, Setting, load_ncci_tables
from rules.ncci_import import import_table, parse_mue, parse_ptp
from schemas.claim import ClaimSubmitted, ClaimType
from tests.rules.conftest import VALIDATED_AT
from tests.rules.ncci_files import FACILITY_MUE_HEADER, mue_text, ptp_text
from worker.cli import main
from worker.exit_codes import ExitCode

REPO_ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = REPO_ROOT / "examples" / "claims.jsonl"
NEW_RULES = ("CLAIM.UNITS.MUE_LINE_EXCEEDED", "CLAIM.UNITS.MUE_DATE_EXCEEDED", "CLAIM.BUNDLING.PTP_PAIR")


def _mue_dir(directory: Path, j9353_mue: int, *, effective: str = "2026-10-01") -> Path:
    text = mue_text([("J9353", j9353_mue, 3), ("96413", 1, 2)])
    name = f"MCR_MUE_PractitionerServices_Eff_{effective[5:7]}-{effective[8:]}-{effective[:4]}.csv"
    import_table(parse_mue(text.encode(), name), directory)
    return directory


def _first_example() -> ClaimSubmitted:
    return ClaimSubmitted.model_validate_json(EXAMPLES.read_bytes().splitlines()[0])


def test_the_ruleset_version_carries_the_tables_digest_and_changes_with_them(tmp_path: Path) -> None:
    first = load_engine(policy_dir=_mue_dir(tmp_path / "a", 250)).ruleset.version
    same = load_engine(policy_dir=_mue_dir(tmp_path / "b", 250)).ruleset.version
    other = load_engine(policy_dir=_mue_dir(tmp_path / "c", 240)).ruleset.version

    assert first.startswith("1.3.0+ncci.")
    assert len(first.removeprefix("1.3.0+ncci.")) == 12
    assert first == same  # the same tables, the same version
    assert other != first
    assert load_engine().ruleset.version == "1.3.0"


def test_the_payer_file_and_the_tables_both_show_in_the_version(tmp_path: Path) -> None:
    payers = tmp_path / "payers.yaml"
    payers.write_text("payers: []\n", encoding="utf-8")

    version = load_engine(payers, _mue_dir(tmp_path / "p", 250)).ruleset.version

    assert version.startswith("1.3.0+payers.")
    assert "+ncci." in version


def test_a_table_changed_after_the_import_is_refused(tmp_path: Path) -> None:
    directory = _mue_dir(tmp_path / "p", 250)
    [entry] = json.loads((directory / MANIFEST_NAME).read_text())["tables"]
    table = directory / entry["file"]
    table.write_text(table.read_text().replace("250", "999"))

    with pytest.raises(PolicyError, match="SHA-256 is not the manifest's"):
        load_engine(policy_dir=directory)


def test_a_directory_without_a_manifest_is_refused(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match=r"manifest\.json: cannot be read"):
        load_engine(policy_dir=tmp_path)


def test_without_a_policy_directory_the_new_rules_neither_run_nor_report_themselves(engine: RuleEngine) -> None:
    claim = _first_example()

    verdict = engine.validate(claim, validated_at=VALIDATED_AT, source=None)

    assert not {f.rule_id for f in verdict.findings} & set(NEW_RULES)
    assert not {n.rule_id for n in verdict.not_evaluated} & set(NEW_RULES)


def test_an_institutional_claim_with_only_practitioner_tables_is_not_evaluated_by_them(tmp_path: Path) -> None:
    directory = _mue_dir(tmp_path / "p", 250)
    ptp = ptp_text([("96413", "36000", "20090101", "*", 0)])
    import_table(parse_ptp(ptp.encode(), "ccipra-v321r0-f1.txt"), directory)
    engine = load_engine(policy_dir=directory)
    claim = _first_example().model_copy(update={"claim_type": ClaimType.INSTITUTIONAL})

    verdict = engine.validate(claim, validated_at=VALIDATED_AT, source=None)

    reasons = {n.rule_id: n.reason for n in verdict.not_evaluated}
    assert reasons["CLAIM.UNITS.MUE_LINE_EXCEEDED"] == "no facility MUE table in the policy directory"
    assert reasons["CLAIM.BUNDLING.PTP_PAIR"] == "no facility PTP table in the policy directory"


def test_a_facility_table_judges_institutional_claims(tmp_path: Path) -> None:
    directory = tmp_path / "p"
    text = mue_text([("J9353", 200, 3)], header=FACILITY_MUE_HEADER)
    import_table(parse_mue(text.encode(), "opps-mue-2026-q4.csv"), directory)
    engine = load_engine(policy_dir=directory)
    claim = _first_example()

    institutional = engine.validate(
        claim.model_copy(update={"claim_type": ClaimType.INSTITUTIONAL}), validated_at=VALIDATED_AT, source=None
    )
    professional = engine.validate(claim, validated_at=VALIDATED_AT, source=None)

    assert "CLAIM.UNITS.MUE_DATE_EXCEEDED" in {f.rule_id for f in institutional.findings}
    assert "CLAIM.UNITS.MUE_DATE_EXCEEDED" not in {f.rule_id for f in professional.findings}
    assert set(load_ncci_tables(directory).mue) == {Setting.FACILITY}


def test_validate_reads_the_policy_directory_from_the_flag(
    tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    directory = _mue_dir(tmp_path / "p", 200)  # the first example bills 250 units of J9353 on one date

    code = main(["validate", str(EXAMPLES), "--policy-dir", str(directory), "--validated-at", "2026-11-27T12:00:00Z"])

    first = json.loads(capsysbinary.readouterr().out.splitlines()[0])
    assert code == ExitCode.RECORDS_FAILED
    assert first["ruleset"]["version"].startswith("1.3.0+ncci.")
    assert [f["rule_id"] for f in first["findings"]] == ["CLAIM.UNITS.MUE_DATE_EXCEEDED"]
    assert (first["findings"][0]["carc"], first["findings"][0]["rarc"]) == ("151", ["N362"])


def test_validate_reads_the_policy_directory_from_claims_policy_dir(
    tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLAIMS_POLICY_DIR", str(_mue_dir(tmp_path / "p", 250)))

    main(["validate", str(EXAMPLES), "--validated-at", "2026-11-27T12:00:00Z"])

    first = json.loads(capsysbinary.readouterr().out.splitlines()[0])
    assert "+ncci." in first["ruleset"]["version"]


def test_validate_with_a_missing_policy_directory_exits_3(
    tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    code = main(["validate", str(EXAMPLES), "--policy-dir", str(tmp_path / "absent")])

    assert code == ExitCode.CONFIG
    assert b"CLAIMS_POLICY_DIR" in capsysbinary.readouterr().err


def test_validate_with_a_damaged_policy_directory_exits_3(
    tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    (tmp_path / MANIFEST_NAME).write_text("{not json", encoding="utf-8")

    code = main(["validate", str(EXAMPLES), "--policy-dir", str(tmp_path)])

    assert code == ExitCode.CONFIG
    assert b"invalid policy" in capsysbinary.readouterr().err


def test_claims_worker_rules_lists_the_new_rules_with_their_codes_and_sources(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["rules", "--format", "jsonl"]) == ExitCode.OK

    listed = {rule["rule_id"]: rule for rule in map(json.loads, capsys.readouterr().out.splitlines())}
    for rule_id in NEW_RULES:
        assert "Runs only with a policy directory" in listed[rule_id]["description"]
    assert (listed["CLAIM.UNITS.MUE_LINE_EXCEEDED"]["carc"], listed["CLAIM.UNITS.MUE_LINE_EXCEEDED"]["rarc"]) == (
        "151",
        ["N362"],
    )
    assert listed["CLAIM.BUNDLING.PTP_PAIR"]["carc"] == "236"
    assert listed["CLAIM.BUNDLING.PTP_PAIR"]["category"] == "bundling"
    assert "[CMS-NCCI]" in listed["CLAIM.BUNDLING.PTP_PAIR"]["source"]
    assert "[CMS-MUE] (M)" in listed["CLAIM.UNITS.MUE_DATE_EXCEEDED"]["source"]


def test_the_mue_table_of_a_date_is_the_latest_quarter_that_began_on_or_before_it(tmp_path: Path) -> None:
    for effective in ("2026-01-01", "2026-04-01", "2026-07-01"):
        _mue_dir(tmp_path, 250, effective=effective)
    tables = load_ncci_tables(tmp_path)

    def start(day: str) -> str | None:
        table = tables.mue_on(Setting.PRACTITIONER, dt.date.fromisoformat(day))
        return table.effective_from.isoformat() if table else None

    assert start("2025-12-31") is None
    assert start("2026-01-01") == "2026-01-01"
    assert start("2026-03-31") == "2026-01-01"
    assert start("2026-04-01") == "2026-04-01"
    assert start("2026-06-30") == "2026-04-01"
    assert start("2027-02-01") == "2026-07-01"
    assert tables.mue_on(Setting.FACILITY, dt.date(2026, 5, 1)) is None


def test_run_with_a_missing_policy_directory_exits_3_before_reaching_kafka(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["run", "--policy-dir", str(tmp_path / "absent")])

    assert code == ExitCode.CONFIG
    assert "CLAIMS_POLICY_DIR" in capsys.readouterr().err
