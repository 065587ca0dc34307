"""The ICD-10-CM code set, from the `simple_icd_10_cm` package, as two frozen sets built once per engine."""

from __future__ import annotations

from importlib import metadata

from rules.policy_tables import Icd10CmCodeSet


def load_icd10cm() -> Icd10CmCodeSet:
    """Every ICD-10-CM category and code (dotted form) and the billable ones. Takes about 2 s the first time."""
    # Imported here, not at module level: the import parses the whole code set (seconds), which only building
    # an engine should pay for.
    import simple_icd_10_cm as icd  # noqa: PLC0415

    # get_all_codes also lists chapters ("1".."22") and blocks ("A00-A09"), which are not codes.
    valid = frozenset(code for code in icd.get_all_codes(True) if "-" not in code and not code.isdigit())
    billable = frozenset(code for code in valid if icd.is_leaf(code))
    return Icd10CmCodeSet(
        valid=valid, billable=billable, source=f"simple_icd_10_cm {metadata.version('simple_icd_10_cm')}"
    )
