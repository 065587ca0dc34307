"""NCCI edit tables (MUE, PTP) from a policy directory, as `claims-worker policy import-mue|import-ptp` write it.

A policy directory holds `manifest.json` and one JSON file per imported table. The manifest lists every table
(kind, setting, effective date, source file names and SHA-256s, row count, the table file's SHA-256); it is
written last, by an atomic rename, so a reader sees the tables of one import or of the one before, never half.

- MUE tables are effective-dated: one per setting and quarter (`effective_from`); a line is judged by the table
  with the latest `effective_from` on or before its service date.
- PTP tables carry an effective and a deletion date per edit; the newest import of a setting replaces the one
  before (CMS's quarterly files list deleted edits with their deletion dates).

`load_ncci_tables(directory)` is the entry point; it raises `NcciTableError` naming the file at fault. Lookups are
dict look-ups (per code, per column 1 code), never a scan of a table per claim.
"""

from __future__ import annotations

import bisect
import datetime as dt
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from types import MappingProxyType
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

MANIFEST_NAME = "manifest.json"


class NcciTableError(Exception):
    """A policy directory's manifest or table is missing, unreadable or does not match its digest."""


class Setting(StrEnum):
    """Which CMS table applies: practitioner tables to professional claims, facility (outpatient hospital) tables
    to institutional claims."""

    PRACTITIONER = "practitioner"
    FACILITY = "facility"


class TableKind(StrEnum):
    MUE = "mue"
    PTP = "ptp"


# ------------------------------------------------------------------------------------------------ the files


class SourceFile(BaseModel):
    """A CMS file an imported table was read from."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]


class ManifestEntry(BaseModel):
    """One imported table, as the manifest lists it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: TableKind
    setting: Setting
    # MUE: the quarter's first day (the table applies from it). PTP: None (each edit has its own dates).
    effective_from: dt.date | None = None
    file: Annotated[str, Field(pattern=r"^[a-z0-9._-]+\.json$")]
    sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
    rows: Annotated[int, Field(ge=0)]
    # CMS's files (a PTP table comes in several part files: f1, f2, ...), names and SHA-256 as imported.
    sources: Annotated[list[SourceFile], Field(min_length=1)]

    @property
    def source_names(self) -> str:
        return ", ".join(source.name for source in self.sources)


class Manifest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    format: Literal[1] = 1
    tables: list[ManifestEntry] = Field(default_factory=list)


def manifest_bytes(manifest: Manifest) -> bytes:
    """The manifest as written (sorted tables, stable JSON): its SHA-256 is the tables' digest."""
    ordered = sorted(manifest.tables, key=lambda t: (t.kind, t.setting, t.effective_from or dt.date.min))
    document = Manifest(tables=ordered).model_dump(mode="json")
    return (json.dumps(document, indent=2, sort_keys=True) + "\n").encode("utf-8")


# ------------------------------------------------------------------------------------------------ the tables


@dataclass(frozen=True, slots=True)
class MueLimit:
    """The MUE of one code: at most `value` units; `indicator` 1 per line, 2 and 3 per date of service."""

    value: int
    indicator: int
    rationale: str

    @property
    def per_line(self) -> bool:
        return self.indicator == 1


@dataclass(frozen=True, slots=True)
class MueTable:
    """One quarter's MUE table of one setting."""

    effective_from: dt.date
    source_file: str
    limits: Mapping[str, MueLimit]


@dataclass(frozen=True, slots=True)
class PtpEdit:
    """A column 1 / column 2 pair: column 2 is not paid with column 1 on one date, unless the modifier indicator
    is 1 and an NCCI-associated modifier is on either line (0: never; 9: not applicable, the edit is inactive)."""

    column_1: str
    column_2: str
    effective: dt.date
    deleted: dt.date | None
    modifier_indicator: int
    rationale: str

    def in_effect_on(self, day: dt.date) -> bool:
        return self.effective <= day and (self.deleted is None or self.deleted >= day)


@dataclass(frozen=True, slots=True)
class PtpTable:
    source_file: str
    # column 1 code -> column 2 code -> the edits of the pair (one per effective period)
    edits: Mapping[str, Mapping[str, tuple[PtpEdit, ...]]]


@dataclass(frozen=True, slots=True)
class NcciTables:
    """The loaded MUE and PTP tables per setting; empty when no policy directory is set (the rules do not run)."""

    mue: Mapping[Setting, tuple[MueTable, ...]] = field(default_factory=lambda: MappingProxyType({}))
    ptp: Mapping[Setting, PtpTable] = field(default_factory=lambda: MappingProxyType({}))
    # First 12 hex digits of the manifest's SHA-256; None without a policy directory.
    digest: str | None = None
    # The effective_from dates of `mue`'s tables, per setting, for the look-up by date.
    mue_starts: Mapping[Setting, tuple[dt.date, ...]] = field(default_factory=lambda: MappingProxyType({}))

    def mue_on(self, setting: Setting, day: dt.date) -> MueTable | None:
        """The MUE table of `setting` in effect on `day` (the latest effective_from <= day), or None."""
        tables = self.mue.get(setting)
        if not tables:
            return None
        latest = tables[-1]
        if latest.effective_from <= day:
            return latest  # the usual case: a claim of the current quarter
        index = bisect.bisect_right(self.mue_starts[setting], day)
        return tables[index - 1] if index else None

    def __repr__(self) -> str:
        mue = {s.value: len(t) for s, t in self.mue.items()}
        return f"<NcciTables digest={self.digest} mue_quarters={mue} ptp={[s.value for s in self.ptp]}>"


NO_NCCI_TABLES = NcciTables()


# ---------------------------------------------------------------------------------------------------- loading


def load_ncci_tables(directory: Path) -> NcciTables:
    """Read `directory/manifest.json` and its tables; raises `NcciTableError` (file named) when anything is off:
    no manifest, invalid JSON, a table whose SHA-256 differs from the manifest's."""
    manifest_path = directory / MANIFEST_NAME
    try:
        raw = manifest_path.read_bytes()
    except OSError as error:
        raise NcciTableError(f"{manifest_path}: cannot be read: {error.strerror or error}") from None
    try:
        manifest = Manifest.model_validate_json(raw)
    except ValidationError as error:
        first = error.errors(include_url=False, include_input=False)[0]
        where = ".".join(str(part) for part in first["loc"]) or "(top level)"
        raise NcciTableError(f"{manifest_path}: {where}: {first['msg']}") from None
    mue: dict[Setting, list[MueTable]] = {}
    ptp: dict[Setting, PtpTable] = {}
    for entry in manifest.tables:
        rows = _table_rows(directory, entry)
        if entry.kind is TableKind.MUE:
            mue.setdefault(entry.setting, []).append(_mue_table(entry, rows))
        else:
            if entry.setting in ptp:
                raise NcciTableError(f"{manifest_path}: two PTP tables for the {entry.setting} setting")
            ptp[entry.setting] = _ptp_table(entry, rows)
    ordered = {s: tuple(sorted(t, key=lambda m: m.effective_from)) for s, t in mue.items()}
    return NcciTables(
        mue=MappingProxyType(ordered),
        ptp=MappingProxyType(ptp),
        digest=hashlib.sha256(raw).hexdigest()[:12],
        mue_starts=MappingProxyType({s: tuple(m.effective_from for m in t) for s, t in ordered.items()}),
    )


def _table_rows(directory: Path, entry: ManifestEntry) -> list[list[object]]:
    path = directory / entry.file
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise NcciTableError(f"{path}: cannot be read: {error.strerror or error}") from None
    if hashlib.sha256(raw).hexdigest() != entry.sha256:
        raise NcciTableError(f"{path}: its SHA-256 is not the manifest's (the file was changed after the import)")
    try:
        document = json.loads(raw)
    except ValueError as error:
        raise NcciTableError(f"{path}: not valid JSON: {error}") from None
    rows = document.get("rows") if isinstance(document, dict) else None
    if not isinstance(rows, list) or len(rows) != entry.rows:
        raise NcciTableError(f"{path}: expected {entry.rows} rows as the manifest says")
    return rows


def _mue_table(entry: ManifestEntry, rows: list[list[object]]) -> MueTable:
    if entry.effective_from is None:
        raise NcciTableError(f"{entry.file}: an MUE table needs effective_from in the manifest")
    limits: dict[str, MueLimit] = {}
    try:
        for code, value, indicator, rationale in rows:
            limits[str(code)] = MueLimit(int(str(value)), int(str(indicator)), str(rationale))
    except (TypeError, ValueError):
        raise NcciTableError(f"{entry.file}: an MUE row is not [code, value, indicator, rationale]") from None
    return MueTable(entry.effective_from, entry.source_names, MappingProxyType(limits))


def _ptp_table(entry: ManifestEntry, rows: list[list[object]]) -> PtpTable:
    edits: dict[str, dict[str, list[PtpEdit]]] = {}
    # A quarter's PTP table has hundreds of thousands of rows but few distinct dates and rationales: share them.
    dates: dict[str, dt.date] = {}
    texts: dict[str, str] = {}
    try:
        for column_1, column_2, effective, deleted, indicator, rationale in rows:
            effective_text, rationale_text = str(effective), str(rationale)
            effective_date = dates.get(effective_text) or dates.setdefault(
                effective_text, dt.date.fromisoformat(effective_text)
            )
            deleted_date = None
            if deleted is not None:
                deleted_text = str(deleted)
                deleted_date = dates.get(deleted_text) or dates.setdefault(
                    deleted_text, dt.date.fromisoformat(deleted_text)
                )
            edit = PtpEdit(
                str(column_1),
                str(column_2),
                effective_date,
                deleted_date,
                int(str(indicator)),
                texts.setdefault(rationale_text, rationale_text),
            )
            edits.setdefault(edit.column_1, {}).setdefault(edit.column_2, []).append(edit)
    except (TypeError, ValueError):
        raise NcciTableError(
            f"{entry.file}: a PTP row is not [column 1, column 2, effective, deletion, modifier, rationale]"
        ) from None
    frozen = {
        column_1: MappingProxyType({column_2: tuple(pair) for column_2, pair in by_column_2.items()})
        for column_1, by_column_2 in edits.items()
    }
    return PtpTable(entry.source_names, MappingProxyType(frozen))
