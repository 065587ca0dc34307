"""`claims-worker policy import-mue|import-ptp`: CMS-layout files into a policy directory, or exit 3 and nothing
written."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from rules.ncci import load_ncci_tables
from tests.rules.ncci_files import FACILITY_MUE_HEADER, MUE_HEADER, PTP_HEADER, PTP_PREAMBLE, mue_text, ptp_text, write
from worker.cli import main
from worker.exit_codes import ExitCode

MUE_NAME = "MCR_MUE_PractitionerServices_Eff_01-01-2026.csv"
PTP_NAME = "ccipra-v321r0-f1.txt"


def _files(directory: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(directory.iterdir())} if directory.exists() else {}


def test_import_mue_writes_the_table_and_a_manifest_with_its_source_rows_and_digests(tmp_path: Path) -> None:
    source = write(tmp_path / MUE_NAME, mue_text([("J9353", 60, 3), ("96413", 1, 2), ("96415", 8, 1)]))
    policy_dir = tmp_path / "policy"

    code = main(["policy", "import-mue", str(source), "--policy-dir", str(policy_dir)])

    assert code == ExitCode.OK
    manifest = json.loads((policy_dir / "manifest.json").read_text())
    [entry] = manifest["tables"]
    assert entry["kind"] == "mue"
    assert entry["setting"] == "practitioner"
    assert entry["effective_from"] == "2026-01-01"
    assert entry["rows"] == 3
    assert entry["sources"] == [{"name": MUE_NAME, "sha256": hashlib.sha256(source.read_bytes()).hexdigest()}]
    assert entry["sha256"] == hashlib.sha256((policy_dir / entry["file"]).read_bytes()).hexdigest()
    tables = load_ncci_tables(policy_dir)
    [table] = tables.mue[next(iter(tables.mue))]
    assert table.limits["J9353"].value == 60
    assert table.limits["J9353"].indicator == 3
    assert table.limits["96415"].per_line


def test_import_mue_reads_the_facility_table_and_an_effective_date_flag(tmp_path: Path) -> None:
    source = write(tmp_path / "mue.csv", mue_text([("J9353", 60, 3)], header=FACILITY_MUE_HEADER))
    policy_dir = tmp_path / "policy"

    code = main(
        ["policy", "import-mue", str(source), "--effective-from", "2026-04-01", "--policy-dir", str(policy_dir)]
    )

    assert code == ExitCode.OK
    [entry] = json.loads((policy_dir / "manifest.json").read_text())["tables"]
    assert (entry["setting"], entry["effective_from"]) == ("facility", "2026-04-01")


def test_two_quarters_of_mue_are_kept_side_by_side_and_the_same_quarter_is_replaced(tmp_path: Path) -> None:
    policy_dir = tmp_path / "policy"
    first = write(tmp_path / "medicare-ncci-2026-q1-practitioner-mue.csv", mue_text([("J9353", 60, 3)]))
    second = write(tmp_path / "medicare-ncci-2026-q2-practitioner-mue.csv", mue_text([("J9353", 50, 3)]))
    again = write(tmp_path / "medicare-ncci-2026-q2-practitioner-mue-v2.csv", mue_text([("J9353", 40, 3)]))

    for source in (first, second, again):
        assert main(["policy", "import-mue", str(source), "--policy-dir", str(policy_dir)]) == ExitCode.OK

    manifest = json.loads((policy_dir / "manifest.json").read_text())
    assert [(t["effective_from"], t["sources"][0]["name"]) for t in manifest["tables"]] == [
        ("2026-01-01", first.name),
        ("2026-04-01", again.name),
    ]
    assert len(_files(policy_dir)) == 3  # the manifest and two tables: the replaced table file is removed


def test_import_ptp_writes_the_edits_with_their_dates_and_modifier_indicators(tmp_path: Path) -> None:
    source = write(
        tmp_path / PTP_NAME,
        ptp_text([("96413", "96360", "20090101", "*", 1), ("96413", "96372", "20090101", "20251231", 0)]),
    )
    policy_dir = tmp_path / "policy"

    code = main(["policy", "import-ptp", str(source), "--policy-dir", str(policy_dir)])

    assert code == ExitCode.OK
    [entry] = json.loads((policy_dir / "manifest.json").read_text())["tables"]
    assert (entry["kind"], entry["setting"], entry["rows"], entry["effective_from"]) == ("ptp", "practitioner", 2, None)
    table = next(iter(load_ncci_tables(policy_dir).ptp.values()))
    [kept] = table.edits["96413"]["96360"]
    [deleted] = table.edits["96413"]["96372"]
    assert (kept.deleted, kept.modifier_indicator) == (None, 1)
    assert (deleted.deleted.isoformat() if deleted.deleted else None, deleted.modifier_indicator) == ("2025-12-31", 0)


def test_import_ptp_reads_a_header_continued_over_several_rows_as_the_xlsx_saved_as_csv_has_it(
    tmp_path: Path,
) -> None:
    text = (
        "CPT only copyright 2025 American Medical Association.,,,,,,\n"
        "Column 1,Column 2,*=in existence prior to 1996,Effective Date,Deletion Date,Modifier,PTP Edit Rationale\n"
        ",,,,,0=not allowed,\n,,,,*=no data,1=allowed,\n,,,,,9=not applicable,\n"
        "96413,96360,*,20090101,*,1,Standards of medical / surgical practice\n"
    )
    source = write(tmp_path / "ptp.csv", text)

    code = main(["policy", "import-ptp", str(source), "--setting", "facility", "--policy-dir", str(tmp_path / "p")])

    assert code == ExitCode.OK
    assert "facility" in {s.value for s in load_ncci_tables(tmp_path / "p").ptp}


def test_import_ptp_reads_every_part_file_of_a_quarter_into_one_table_that_replaces_the_last(tmp_path: Path) -> None:
    policy_dir = tmp_path / "policy"
    old = write(tmp_path / "ccipra-v320r0-f1.txt", ptp_text([("96413", "36000", "20090101", "*", 0)]))
    part_1 = write(tmp_path / "ccipra-v321r0-f1.txt", ptp_text([("96413", "36415", "20090101", "*", 1)]))
    part_2 = write(tmp_path / "ccipra-v321r0-f2.txt", ptp_text([("96415", "36415", "20090101", "*", 1)]))
    assert main(["policy", "import-ptp", str(old), "--policy-dir", str(policy_dir)]) == ExitCode.OK

    code = main(["policy", "import-ptp", str(part_1), str(part_2), "--policy-dir", str(policy_dir)])

    assert code == ExitCode.OK
    [entry] = json.loads((policy_dir / "manifest.json").read_text())["tables"]
    assert [source["name"] for source in entry["sources"]] == [part_1.name, part_2.name]
    assert entry["rows"] == 2
    table = next(iter(load_ncci_tables(policy_dir).ptp.values()))
    assert set(table.edits) == {"96413", "96415"}
    assert "36000" not in table.edits["96413"]
    assert len(_files(policy_dir)) == 2  # the manifest and the new table; the old table file is removed


def test_a_malformed_part_file_leaves_the_previous_ptp_table_in_place(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    policy_dir = tmp_path / "policy"
    good = write(tmp_path / "ccipra-v321r0-f1.txt", ptp_text([("96413", "36415", "20090101", "*", 1)]))
    bad = write(tmp_path / "ccipra-v321r0-f2.txt", PTP_PREAMBLE + PTP_HEADER + "96413\t36000\t\t20090101\t*\t7\tx\n")
    assert main(["policy", "import-ptp", str(good), "--policy-dir", str(policy_dir)]) == ExitCode.OK
    before = _files(policy_dir)

    code = main(["policy", "import-ptp", str(good), str(bad), "--policy-dir", str(policy_dir)])

    assert code == ExitCode.CONFIG
    assert "ccipra-v321r0-f2.txt line 4: modifier indicator '7'" in capsys.readouterr().err
    assert _files(policy_dir) == before


MALFORMED_MUE = {
    "missing_column": (
        '"HCPCS/CPT Code","Practitioner Services MUE Values","MUE Rationale"\nJ9353,60,"Clinical: Data"\n',
        "no 'MUE Adjudication Indicator' column",
        "line 1",
    ),
    "bad_indicator": (MUE_HEADER + 'J9353,60,"4 Sometimes","Clinical: Data"\n', "is not 1, 2 or 3", "line 3"),
    "bad_value": (MUE_HEADER + 'J9353,sixty,"3 Date of Service Edit: Clinical","x"\n', "not a whole number", "line 3"),
    "no_header": ("J9353,60,3,x\n", "no header row", ""),
}


@pytest.mark.parametrize("case", sorted(MALFORMED_MUE))
def test_a_malformed_mue_file_exits_3_names_the_line_and_writes_nothing(
    case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text, problem, line = MALFORMED_MUE[case]
    policy_dir = tmp_path / "policy"
    good = write(tmp_path / MUE_NAME, mue_text([("J9353", 60, 3)]))
    assert main(["policy", "import-mue", str(good), "--policy-dir", str(policy_dir)]) == ExitCode.OK
    before = _files(policy_dir)
    capsys.readouterr()
    source = write(tmp_path / "medicare-ncci-2026-q2-practitioner-mue.csv", text)

    code = main(["policy", "import-mue", str(source), "--policy-dir", str(policy_dir)])

    assert code == ExitCode.CONFIG
    error = capsys.readouterr().err
    assert problem in error
    assert line in error
    assert "nothing written" in error
    assert _files(policy_dir) == before


MALFORMED_PTP = {
    "missing_column": (
        PTP_PREAMBLE + "Column 1\tColumn 2\tEffective Date\tDeletion Date\tModifier\tPTP Edit Rationale\n"
        "96413\t96360\t20090101\t*\t1\tx\n",
        "column 3 of the header is not '*=in existence prior to 1996'",
        "line 3",
    ),
    "bad_indicator": (PTP_PREAMBLE + PTP_HEADER + "96413\t96360\t\t20090101\t*\t2\tx\n", "is not 0, 1 or 9", "line 4"),
    "bad_date": (
        PTP_PREAMBLE + PTP_HEADER + "96413\t96360\t\t20090101\t*\t1\tx\n96413\t96361\t\t2009-01-01\t*\t1\tx\n",
        "effective date '2009-01-01' is not a date YYYYMMDD",
        "line 5",
    ),
    "impossible_date": (
        PTP_PREAMBLE + PTP_HEADER + "96413\t96360\t\t20090231\t*\t1\tx\n",
        "is not a date YYYYMMDD",
        "line 4",
    ),
}


@pytest.mark.parametrize("case", sorted(MALFORMED_PTP))
def test_a_malformed_ptp_file_exits_3_names_the_line_and_writes_nothing(
    case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text, problem, line = MALFORMED_PTP[case]
    policy_dir = tmp_path / "policy"
    source = write(tmp_path / PTP_NAME, text)

    code = main(["policy", "import-ptp", str(source), "--policy-dir", str(policy_dir)])

    assert code == ExitCode.CONFIG
    error = capsys.readouterr().err
    assert problem in error
    assert line in error
    assert not policy_dir.exists() or _files(policy_dir) == {}


def test_without_a_policy_directory_the_import_exits_3_and_says_how_to_give_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CLAIMS_POLICY_DIR", raising=False)
    source = write(tmp_path / MUE_NAME, mue_text([("J9353", 60, 3)]))

    assert main(["policy", "import-mue", str(source)]) == ExitCode.CONFIG
    assert "CLAIMS_POLICY_DIR" in capsys.readouterr().err


def test_the_policy_directory_comes_from_claims_policy_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    policy_dir = tmp_path / "policy"
    policy_dir.mkdir()
    monkeypatch.setenv("CLAIMS_POLICY_DIR", str(policy_dir))
    source = write(tmp_path / PTP_NAME, ptp_text([("96413", "96360", "20090101", "*", 1)]))

    assert main(["policy", "import-ptp", str(source)]) == ExitCode.OK
    assert (policy_dir / "manifest.json").exists()


def test_claims_policy_dir_may_name_a_directory_the_first_import_creates(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    policy_dir = tmp_path / "not-yet" / "policy"
    monkeypatch.setenv("CLAIMS_POLICY_DIR", str(policy_dir))
    source = write(tmp_path / MUE_NAME, mue_text([("J9353", 60, 3)]))

    assert main(["policy", "import-mue", str(source)]) == ExitCode.OK
    assert (policy_dir / "manifest.json").exists()


def test_the_rules_listing_reads_the_policy_directory_and_names_its_digest(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CLAIMS_POLICY_DIR", raising=False)
    policy_dir = tmp_path / "policy"
    source = write(tmp_path / MUE_NAME, mue_text([("J9353", 60, 3)]))
    assert main(["policy", "import-mue", str(source), "--policy-dir", str(policy_dir)]) == ExitCode.OK
    capsys.readouterr()

    assert main(["rules"]) == ExitCode.OK
    assert "+ncci." not in capsys.readouterr().out.splitlines()[0]
    assert main(["rules", "--policy-dir", str(policy_dir)]) == ExitCode.OK
    assert "+ncci." in capsys.readouterr().out.splitlines()[0]


def test_the_rules_listing_exits_3_for_a_tampered_or_missing_policy_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    policy_dir = tmp_path / "policy"
    source = write(tmp_path / MUE_NAME, mue_text([("J9353", 60, 3)]))
    assert main(["policy", "import-mue", str(source), "--policy-dir", str(policy_dir)]) == ExitCode.OK
    [entry] = json.loads((policy_dir / "manifest.json").read_text())["tables"]
    table = policy_dir / entry["file"]
    table.write_text(table.read_text().replace("60", "90"))

    assert main(["rules", "--policy-dir", str(policy_dir)]) == ExitCode.CONFIG
    assert main(["rules", "--policy-dir", str(tmp_path / "absent")]) == ExitCode.CONFIG
    assert "CLAIMS_POLICY_DIR" in capsys.readouterr().err


def test_an_mue_file_without_a_date_in_its_name_needs_effective_from(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = write(tmp_path / "mue.csv", mue_text([("J9353", 60, 3)]))

    assert main(["policy", "import-mue", str(source), "--policy-dir", str(tmp_path / "p")]) == ExitCode.CONFIG
    assert "--effective-from" in capsys.readouterr().err
