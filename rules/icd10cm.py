"""The ICD-10-CM code set of the `simple_icd_10_cm` package, as two frozen sets built once per engine.

The rules need only which codes exist and which are billable (leaves of the classification). Importing the
package builds its whole tree from the tabular XML (about 2 s and 150 MB that stay for the life of the process),
so the sets are built instead from the package's plain code list (`data/code-list-<release>.txt`: every
chapter, block, category and code of the release, one per line, without dots), read as a file without
importing the package: about 0.1 s and 15 MB. A code is billable when no other code of the list extends it
(ICD-10-CM children always extend their parent's code, 7th characters and X placeholders included).
`load_icd10cm_from_tree` builds the same sets through the package's tree; a test checks that both agree.

The code list is named after its release (`code-list-April-2026.txt`): CMS's releases take effect on 1 October
(a new fiscal year) or 1 April (a mid-year update) and stay in force until the next 30 September, so the name
gives the service dates the set is in force for. The package carries one release; a claim with a service date
outside it is judged with that release all the same, and the verdict says so (rules/checks/diagnosis.py).
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import re
from importlib import metadata
from pathlib import Path

from rules.policy_tables import Icd10CmCodeSet

PACKAGE = "simple_icd_10_cm"
_CODE_LIST_GLOB = "code-list-*.txt"
_RELEASE_NAME = re.compile(r"code-list-(?P<month>October|April)-(?P<year>[0-9]{4})\.txt")


class Icd10CmDataError(Exception):
    """The package's code list cannot be found or read."""


def code_list_path() -> Path:
    """The package's plain code list, found without importing the package (importing parses the whole XML)."""
    spec = importlib.util.find_spec(PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    if not locations:
        raise Icd10CmDataError(f"the {PACKAGE} package is not installed")
    found = sorted(Path(locations[0], "data").glob(_CODE_LIST_GLOB))
    if len(found) != 1:
        raise Icd10CmDataError(f"expected one {_CODE_LIST_GLOB} in {PACKAGE}/data, found {len(found)}")
    return found[0]


def release_in_force(file_name: str) -> tuple[dt.date, dt.date] | None:
    """The first and last service dates a code list release is in force for, from its file name; None when the
    name is not `code-list-<October|April>-<year>.txt`."""
    match = _RELEASE_NAME.fullmatch(file_name)
    if match is None:
        return None
    year = int(match["year"])
    if match["month"] == "October":
        return dt.date(year, 10, 1), dt.date(year + 1, 9, 30)
    return dt.date(year, 4, 1), dt.date(year, 9, 30)


def _dotted(code: str) -> str:
    return f"{code[:3]}.{code[3:]}" if len(code) > 3 else code


def code_set_from_list(
    lines: list[str], source: str, in_force: tuple[dt.date, dt.date] | None = None
) -> Icd10CmCodeSet:
    """The sets from the lines of a code list (undotted names; chapters are numbers, blocks contain '-')."""
    names = (line.split(" ", 1)[0].strip() for line in lines)
    codes = {name for name in names if name and "-" not in name and not name.isdigit()}
    # Every proper prefix of a code that is itself a code has children: it is not billable.
    parents = {code[:length] for code in codes for length in range(3, len(code))}
    dotted = {code: _dotted(code) for code in codes}  # one string per code, shared by both sets
    return Icd10CmCodeSet(
        valid=frozenset(dotted.values()),
        billable=frozenset(text for code, text in dotted.items() if code not in parents),
        source=source,
        in_force_from=None if in_force is None else in_force[0],
        in_force_to=None if in_force is None else in_force[1],
    )


def load_icd10cm() -> Icd10CmCodeSet:
    """Every ICD-10-CM category and code (dotted form) and the billable ones, from the package's code list.

    Raises `Icd10CmDataError` when the package or its code list is missing.
    """
    path = code_list_path()
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as error:
        raise Icd10CmDataError(f"cannot read {path}: {error.strerror or error}") from None
    source = f"{PACKAGE} {metadata.version(PACKAGE)} ({path.name})"
    return code_set_from_list(lines, source, release_in_force(path.name))


def load_icd10cm_from_tree() -> Icd10CmCodeSet:
    """The same sets through the package's own tree (slow, memory-hungry: for checking `load_icd10cm`)."""
    import simple_icd_10_cm as icd  # noqa: PLC0415 - the import parses the whole code set

    # get_all_codes also lists chapters ("1".."22") and blocks ("A00-A09"), which are not codes.
    valid = frozenset(code for code in icd.get_all_codes(True) if "-" not in code and not code.isdigit())
    billable = frozenset(code for code in valid if icd.is_leaf(code))
    return Icd10CmCodeSet(valid=valid, billable=billable, source=f"{PACKAGE} {metadata.version(PACKAGE)}")
