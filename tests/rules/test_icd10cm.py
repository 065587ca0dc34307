"""The ICD-10-CM sets the rules use, built from the package's plain code list instead of its tree."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys

from rules.icd10cm import code_set_from_list, load_icd10cm, load_icd10cm_from_tree, release_in_force


def test_the_sets_from_the_code_list_equal_those_of_the_package_tree() -> None:
    # The package's tree is the source of truth; the code list is its compact form.
    compact, tree = load_icd10cm(), load_icd10cm_from_tree()
    assert compact.valid == tree.valid
    assert compact.billable == tree.billable
    assert len(compact.valid) > 90_000


def test_chapters_and_blocks_are_not_codes_and_parents_are_not_billable() -> None:
    code_set = code_set_from_list(
        ["1", "A00-A09", "A00", "A000", "A001", "C50", "C50", "C501", "C5011", "Z23", ""], "t"
    )
    assert code_set.valid == {"A00", "A00.0", "A00.1", "C50", "C50.1", "C50.11", "Z23"}
    assert code_set.billable == {"A00.0", "A00.1", "C50.11", "Z23"}


def test_seventh_character_codes_make_their_placeholder_parents_not_billable() -> None:
    code_set = code_set_from_list(["T360", "T360X1", "T360X1A", "T360X1D"], "t")
    assert code_set.billable == {"T36.0X1A", "T36.0X1D"}


def test_loading_the_sets_does_not_import_the_package() -> None:
    # Importing simple_icd_10_cm parses its whole XML (seconds, about 150 MB): the worker must not pay that.
    probe = (
        "import sys; from rules.icd10cm import load_icd10cm; load_icd10cm(); "
        "print(any(name.startswith('simple_icd_10_cm') for name in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120)
    assert result.stdout.strip() == "False"


def test_a_release_is_in_force_from_its_month_to_the_end_of_the_fiscal_year() -> None:
    assert release_in_force("code-list-April-2026.txt") == (dt.date(2026, 4, 1), dt.date(2026, 9, 30))
    assert release_in_force("code-list-October-2025.txt") == (dt.date(2025, 10, 1), dt.date(2026, 9, 30))
    assert release_in_force("code-list-2026.txt") is None


def test_the_installed_release_knows_the_dates_it_is_in_force_for() -> None:
    code_set = load_icd10cm()
    assert code_set.in_force_from is not None
    assert code_set.in_force_to is not None
    assert code_set.in_force_on(code_set.in_force_from)
    assert code_set.in_force_on(code_set.in_force_to)
    assert not code_set.in_force_on(code_set.in_force_to + dt.timedelta(days=1))
    assert not code_set.in_force_on(code_set.in_force_from - dt.timedelta(days=1))
