"""The ICD-10-CM sets the rules use, built from the package's plain code list instead of its tree."""

from __future__ import annotations

import subprocess
import sys

from rules.icd10cm import code_set_from_list, load_icd10cm, load_icd10cm_from_tree


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
