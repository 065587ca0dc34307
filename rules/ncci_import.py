"""Read CMS's published MUE and NCCI PTP files (CSV or tab-delimited text) and write them into a policy directory.

Layouts read (as CMS publishes them, with copyright/title lines above the table; the XLSX form saved as CSV reads
the same):

- MUE (practitioner or facility outpatient hospital table): a header row `HCPCS/CPT Code`,
  `<Setting> Services MUE Values`, `MUE Adjudication Indicator`, `MUE Rationale` (found by name, in any order),
  then one row per code. The indicator cell is its digit and text: `1 Line Edit`, `2 Date of Service Edit:
  Policy`, `3 Date of Service Edit: Clinical`. The setting is read from the value column's header.
- PTP: a header row starting `Column 1`, `Column 2`, then `*=in existence prior to 1996`, `Effective Date`,
  `Deletion Date *=no data`, `Modifier 0=not allowed 1=allowed 9=not applicable`, `PTP Edit Rationale` (by
  position; the header may continue on the next rows, which are skipped), then one row per edit: dates YYYYMMDD,
  deletion `*` for none.

A problem anywhere raises `NcciFormatError` naming the file and line, before anything is written. `import_table`
writes the table file and then the manifest, each to a temporary file renamed into place, so that a failed import
leaves the directory as it was.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import os
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from rules.ncci import (
    MANIFEST_NAME,
    Manifest,
    ManifestEntry,
    NcciTableError,
    Setting,
    SourceFile,
    TableKind,
    manifest_bytes,
)

# CMS's tables put a few title and copyright lines above the header; a header further down is not the layout.
_HEADER_SEARCH_ROWS = 60
_CODE = re.compile(r"^[A-Z0-9]{5}$")
_YYYYMMDD = re.compile(r"^[0-9]{8}$")
_MUE_INDICATOR = re.compile(r"^([123])(\s|$)")
_MODIFIER_INDICATORS = frozenset({0, 1, 9})
_MUE_EFFECTIVE_IN_NAME = (
    re.compile(r"eff[_-]?(\d{2})[-_](\d{2})[-_](\d{4})", re.IGNORECASE),  # MCR_MUE_..._Eff_01-01-2026.csv
)
_QUARTER_IN_NAME = re.compile(r"(\d{4})[-_ ]?q([1-4])", re.IGNORECASE)  # medicare-ncci-2026-q1-...
_PTP_SETTING_IN_NAME = {"ccipra": Setting.PRACTITIONER, "ccioph": Setting.FACILITY}


class NcciFormatError(ValueError):
    """The file is not in CMS's layout; the message names the file and the line."""


@dataclass(frozen=True, slots=True)
class ParsedTable:
    """A CMS file read into rows, ready to be written."""

    kind: TableKind
    setting: Setting
    effective_from: dt.date | None
    rows: list[list[object]]
    # (file name, SHA-256) of each CMS file read.
    sources: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class ImportResult:
    entry: ManifestEntry
    directory: Path
    replaced: bool


# -------------------------------------------------------------------------------------------------- reading


def _records(raw: bytes, name: str) -> Iterator[tuple[int, list[str]]]:
    """(line number, cells) of each CSV/tab record; a quoted cell may span lines (CMS's copyright notice)."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = raw.decode("cp1252", errors="replace")  # CMS's text files are Windows-encoded
    sample = text[:65536]
    delimiter = "\t" if sample.count("\t") > sample.count(",") else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    start = 1
    try:
        for cells in reader:
            yield start, [cell.strip() for cell in cells]
            start = reader.line_num + 1
    except csv.Error as error:
        raise NcciFormatError(f"{name} line {reader.line_num}: {error}") from None


def _key(cell: str) -> str:
    return re.sub(r"\s+", "", cell).lower()


def parse_mue(raw: bytes, name: str, *, effective_from: dt.date | None = None) -> ParsedTable:
    """A CMS MUE table. `effective_from` defaults to the date or quarter in the file name (`..._Eff_01-01-2026`,
    `...-2026-q1-...`). Raises `NcciFormatError`."""
    effective = effective_from or _effective_from_name(name)
    if effective is None:
        raise NcciFormatError(
            f"{name}: no effective date in the file name (e.g. _Eff_01-01-2026 or 2026-q1): pass --effective-from"
        )
    records = _records(raw, name)
    header_line, columns, setting = _mue_header(records, name)
    rows: list[list[object]] = []
    seen: dict[str, int] = {}
    for number, cells in records:
        if not any(cells):
            continue
        if len(cells) <= max(columns):
            raise NcciFormatError(
                f"{name} line {number}: {len(cells)} columns, the header (line {header_line}) has more"
            )
        code, value_text, indicator_text, rationale = (cells[i] for i in columns)
        code = code.upper()
        if not _CODE.match(code):
            raise NcciFormatError(f"{name} line {number}: HCPCS/CPT code {code!r} is not 5 letters or digits")
        if not value_text.isdigit():
            raise NcciFormatError(f"{name} line {number}: MUE value {value_text!r} is not a whole number")
        indicator = _MUE_INDICATOR.match(indicator_text)
        if indicator is None:
            raise NcciFormatError(
                f"{name} line {number}: MUE adjudication indicator {indicator_text!r} is not 1, 2 or 3"
            )
        if code in seen:
            raise NcciFormatError(f"{name} line {number}: code {code} is listed twice (line {seen[code]})")
        seen[code] = number
        rows.append([code, int(value_text), int(indicator.group(1)), rationale])
    if not rows:
        raise NcciFormatError(f"{name}: no MUE rows below the header (line {header_line})")
    return ParsedTable(TableKind.MUE, setting, effective, rows, ((Path(name).name, hashlib.sha256(raw).hexdigest()),))


# (header as CMS writes it, how its whitespace-free lower-case form ends): the value column's header starts with the
# setting ("Practitioner Services MUE Values", "Outpatient Hospital Services MUE Values").
_MUE_COLUMNS = (
    ("HCPCS/CPT Code", "hcpcs/cptcode"),
    ("... Services MUE Values", "servicesmuevalues"),
    ("MUE Adjudication Indicator", "mueadjudicationindicator"),
    ("MUE Rationale", "muerationale"),
)


def _mue_header(records: Iterator[tuple[int, list[str]]], name: str) -> tuple[int, tuple[int, int, int, int], Setting]:
    for number, cells in records:
        keys = [_key(cell) for cell in cells]
        if "hcpcs/cptcode" not in keys:
            if number > _HEADER_SEARCH_ROWS:
                break
            continue
        positions = []
        for label, ending in _MUE_COLUMNS:
            found = [i for i, key in enumerate(keys) if key.endswith(ending)]
            if not found:
                raise NcciFormatError(f"{name} line {number}: the header has no {label!r} column")
            positions.append(found[0])
        value_header = keys[positions[1]]
        if value_header.startswith("practitioner"):
            setting = Setting.PRACTITIONER
        elif "outpatienthospital" in value_header or value_header.startswith("facility"):
            setting = Setting.FACILITY
        else:
            raise NcciFormatError(
                f"{name} line {number}: {cells[positions[1]]!r} is neither the practitioner nor the facility "
                "outpatient hospital table (the DME supplier table is not used by this worker)"
            )
        return number, (positions[0], positions[1], positions[2], positions[3]), setting
    raise NcciFormatError(
        f"{name}: no header row 'HCPCS/CPT Code, ... Services MUE Values, MUE Adjudication Indicator, MUE Rationale' "
        f"in the first {_HEADER_SEARCH_ROWS} lines"
    )


def _effective_from_name(name: str) -> dt.date | None:
    base = Path(name).name
    for pattern in _MUE_EFFECTIVE_IN_NAME:
        match = pattern.search(base)
        if match:
            month, day, year = (int(part) for part in match.groups())
            try:
                return dt.date(year, month, day)
            except ValueError:
                return None
    quarter = _QUARTER_IN_NAME.search(base)
    if quarter:
        return dt.date(int(quarter.group(1)), 3 * int(quarter.group(2)) - 2, 1)
    return None


_PTP_COLUMNS = (
    ("Column 1", "column1"),
    ("Column 2", "column2"),
    ("*=in existence prior to 1996", "1996"),
    ("Effective Date", "effective"),
    ("Deletion Date", "deletion"),
    ("Modifier", "modifier"),
    ("PTP Edit Rationale", "rationale"),
)


def parse_ptp(raw: bytes, name: str, *, setting: Setting | None = None) -> ParsedTable:
    """A CMS NCCI PTP table. `setting` defaults to what the file name says (`ccipra`: practitioner, `ccioph`:
    outpatient hospital). Raises `NcciFormatError`."""
    chosen = setting or next((s for key, s in _PTP_SETTING_IN_NAME.items() if key in Path(name).name.lower()), None)
    if chosen is None:
        raise NcciFormatError(f"{name}: the file name says neither ccipra nor ccioph: pass --setting")
    records = _records(raw, name)
    header_line = _ptp_header(records, name)
    rows: list[list[object]] = []
    for number, cells in records:
        if not any(cells):
            continue
        if not cells[0] and len(cells) > 1 and not cells[1]:
            continue  # the header's continuation rows ("0=not allowed", "*=no data", ...)
        if len(cells) < len(_PTP_COLUMNS) - 1:
            raise NcciFormatError(
                f"{name} line {number}: {len(cells)} columns, a PTP row has {len(_PTP_COLUMNS)} (header line "
                f"{header_line})"
            )
        column_1, column_2, prior, effective, deletion, modifier = (cell.upper() for cell in cells[:6])
        rationale = cells[6] if len(cells) > 6 else ""
        for label, code in (("column 1", column_1), ("column 2", column_2)):
            if not _CODE.match(code):
                raise NcciFormatError(f"{name} line {number}: {label} code {code!r} is not 5 letters or digits")
        if prior not in ("", "*"):
            raise NcciFormatError(f"{name} line {number}: the prior-to-1996 column holds {prior!r}, not '*' or empty")
        effective_date = _yyyymmdd(effective, name, number, "effective date")
        deletion_date = None if deletion == "*" else _yyyymmdd(deletion, name, number, "deletion date")
        if deletion_date is not None and effective_date is not None and deletion_date < effective_date:
            raise NcciFormatError(
                f"{name} line {number}: deletion date {deletion} is before effective date {effective}"
            )
        if not modifier.isdigit() or int(modifier) not in _MODIFIER_INDICATORS:
            raise NcciFormatError(f"{name} line {number}: modifier indicator {modifier!r} is not 0, 1 or 9")
        rows.append([
            column_1, column_2, effective_date.isoformat(), deletion_date.isoformat() if deletion_date else None,
            int(modifier), rationale,
        ])  # fmt: skip
    if not rows:
        raise NcciFormatError(f"{name}: no PTP rows below the header (line {header_line})")
    return ParsedTable(TableKind.PTP, chosen, None, rows, ((Path(name).name, hashlib.sha256(raw).hexdigest()),))


def merge_ptp(parts: list[ParsedTable]) -> ParsedTable:
    """One PTP table from the part files of one quarter (CMS splits a setting's edits over f1, f2, ...). Raises
    `NcciFormatError` when the parts are of different settings."""
    settings = {part.setting for part in parts}
    if len(settings) != 1:
        names = ", ".join(f"{name} ({part.setting})" for part in parts for name, _ in part.sources)
        raise NcciFormatError(f"the PTP files are of different settings: {names}")
    rows = [row for part in parts for row in part.rows]
    sources = tuple(source for part in parts for source in part.sources)
    return ParsedTable(TableKind.PTP, parts[0].setting, None, rows, sources)


def _ptp_header(records: Iterator[tuple[int, list[str]]], name: str) -> int:
    for number, cells in records:
        keys = [_key(cell) for cell in cells]
        if len(keys) < 2 or keys[0] != "column1" or keys[1] != "column2":
            if number > _HEADER_SEARCH_ROWS:
                break
            continue
        for position, (label, key) in enumerate(_PTP_COLUMNS):
            if key == "rationale" and len(keys) <= position:
                continue  # a text export may drop an empty trailing column; the rationale is then empty
            if position >= len(keys) or key not in keys[position]:
                raise NcciFormatError(f"{name} line {number}: column {position + 1} of the header is not {label!r}")
        return number
    raise NcciFormatError(
        f"{name}: no header row 'Column 1, Column 2, ..., Effective Date, Deletion Date, Modifier, PTP Edit "
        f"Rationale' in the first {_HEADER_SEARCH_ROWS} lines"
    )


def _yyyymmdd(text: str, name: str, number: int, label: str) -> dt.date:
    if _YYYYMMDD.match(text):
        try:
            return dt.date(int(text[:4]), int(text[4:6]), int(text[6:]))
        except ValueError:
            pass
    raise NcciFormatError(f"{name} line {number}: {label} {text!r} is not a date YYYYMMDD")


# -------------------------------------------------------------------------------------------------- writing


def import_table(table: ParsedTable, directory: Path) -> ImportResult:
    """Write `table` into the policy directory `directory` (created if missing) and list it in the manifest.

    An MUE table replaces the one of the same setting and effective date; a PTP table the one of its setting.
    Raises `NcciTableError` when the existing manifest is invalid, OSError when the directory is not writable.
    """
    directory.mkdir(parents=True, exist_ok=True)
    manifest = _existing_manifest(directory)
    body = json.dumps({"kind": table.kind, "setting": table.setting, "rows": table.rows}, separators=(",", ":")) + "\n"
    data = body.encode("utf-8")
    digest = hashlib.sha256(data).hexdigest()
    when = f"-{table.effective_from.isoformat()}" if table.effective_from else ""
    entry = ManifestEntry(
        kind=table.kind,
        setting=table.setting,
        effective_from=table.effective_from,
        file=f"{table.kind}-{table.setting}{when}-{digest[:12]}.json",
        sha256=digest,
        rows=len(table.rows),
        sources=[SourceFile(name=name, sha256=sha256) for name, sha256 in table.sources],
    )
    kept = [
        other
        for other in manifest.tables
        if not (
            other.kind == entry.kind and other.setting == entry.setting and other.effective_from == entry.effective_from
        )
    ]
    replaced = [other for other in manifest.tables if other not in kept]
    _write_atomically(directory / entry.file, data)
    _write_atomically(directory / MANIFEST_NAME, manifest_bytes(Manifest(tables=[*kept, entry])))
    for old in replaced:
        if old.file != entry.file and all(other.file != old.file for other in kept):
            (directory / old.file).unlink(missing_ok=True)
    return ImportResult(entry, directory, bool(replaced))


def _existing_manifest(directory: Path) -> Manifest:
    path = directory / MANIFEST_NAME
    if not path.exists():
        return Manifest()
    try:
        return Manifest.model_validate_json(path.read_bytes())
    except ValueError as error:
        raise NcciTableError(f"{path}: not a valid manifest ({error.__class__.__name__}); fix or remove it") from None


def _write_atomically(path: Path, data: bytes) -> None:
    handle = tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.", delete=False)  # noqa: SIM115
    try:
        with handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        Path(handle.name).replace(path)
    except BaseException:
        Path(handle.name).unlink(missing_ok=True)
        raise
