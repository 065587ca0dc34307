"""Small files in CMS's MUE and NCCI PTP layouts, written by the tests (no CMS value ships with the worker).

The codes and values are made up for the tests: they are not CMS's edits.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from rules.ncci import Setting
from rules.ncci_import import import_table, parse_mue, parse_ptp

MUE_PREAMBLE = (
    '"CPT codes, descriptions and other data only are copyright 2025 American Medical Association.\n'
    'All rights reserved.",,,\n'
)
MUE_HEADER = '"HCPCS/\nCPT Code","Practitioner Services MUE Values","MUE Adjudication Indicator","MUE Rationale"\n'
FACILITY_MUE_HEADER = (
    '"HCPCS/\nCPT Code","Outpatient Hospital Services MUE Values","MUE Adjudication Indicator","MUE Rationale"\n'
)
MAI_TEXT = {1: "1 Line Edit", 2: "2 Date of Service Edit: Policy", 3: "3 Date of Service Edit: Clinical"}

PTP_PREAMBLE = "CPT only copyright 2025 American Medical Association. All rights reserved.\nColumn1/Column2 Edits\n"
PTP_HEADER = (
    "Column 1\tColumn 2\t*=in existence prior to 1996\tEffective Date\tDeletion Date *=no data\t"
    "Modifier 0=not allowed 1=allowed 9=not applicable\tPTP Edit Rationale\n"
)


def mue_text(rows: Sequence[tuple[str, int, int]], *, header: str = MUE_HEADER) -> str:
    """A CMS MUE table (CSV): (code, MUE value, adjudication indicator) per row."""
    body = "".join(f'{code},{value},"{MAI_TEXT[mai]}","Clinical: Data"\n' for code, value, mai in rows)
    return MUE_PREAMBLE + header + body


def ptp_text(rows: Sequence[tuple[str, str, str, str, int]]) -> str:
    """A CMS PTP table (tab-delimited text): (column 1, column 2, effective YYYYMMDD, deletion or *, modifier)."""
    body = "".join(
        f"{c1}\t{c2}\t\t{effective}\t{deletion}\t{modifier}\tMisuse of column two code with column one code\n"
        for c1, c2, effective, deletion, modifier in rows
    )
    return PTP_PREAMBLE + PTP_HEADER + body


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def import_case_tables(tables: Mapping[str, Any], policy_dir: Path) -> None:
    """A rule case file's `ncci_tables` (cases/README.md) through the real import: CMS layout, then the policy dir.

    `mue`: a list of {setting, effective_from, rows: [[code, value, indicator], ...]}; `ptp`: a list of
    {setting, rows: [[column 1, column 2, effective YYYYMMDD, deletion or "*", modifier], ...]}.
    """
    for table in tables.get("mue") or []:
        header = FACILITY_MUE_HEADER if table["setting"] == "facility" else MUE_HEADER
        text = mue_text([(str(c), int(v), int(m)) for c, v, m in table["rows"]], header=header)
        effective = dt.date.fromisoformat(str(table["effective_from"]))
        import_table(parse_mue(text.encode(), f"mue-{effective}.csv", effective_from=effective), policy_dir)
    for table in tables.get("ptp") or []:
        text = ptp_text([(str(a), str(b), str(e), str(d), int(m)) for a, b, e, d, m in table["rows"]])
        import_table(parse_ptp(text.encode(), "ptp.txt", setting=Setting(table["setting"])), policy_dir)
