"""The project cites its own sources: rules/policy/SOURCES.md defines every source id the policy files cite,
and no tracked file points at a path outside the repository (a clone has nothing there)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from rules.engine import RuleEngine

REPOSITORY = Path(__file__).resolve().parents[2]
POLICY_DIR = REPOSITORY / "rules" / "policy"
SOURCES = POLICY_DIR / "SOURCES.md"

# A source id: capitals, digits and dots in two or more parts joined by hyphens ([CMS-OPPS-B], [CFR-424.44]), so
# that YAML lists of codes ([M76], [50242-0933-01]) are not taken for citations.
_SOURCE_ID = re.compile(r"\[([A-Z][A-Z0-9]*(?:-[A-Z0-9.]+)+)\]")
_SOURCE_ROW = re.compile(r"^\| \[([A-Z][A-Z0-9]*(?:-[A-Z0-9.]+)+)\] \|(.+)\|(.+)\|$")
# Where the checked fact sheet lives on the build machines: a clone does not have it (the regexes are written so
# that this file does not match them itself).
_OUTSIDE_PATHS = (re.compile(r"shared[/\\]reference"), re.compile(r"billing[-_ ]facts", re.IGNORECASE))
_PARENT_PATH = re.compile(r"(?<![\w.])((?:\.\./)+)([\w.-]*)")


def _defined_sources() -> dict[str, str]:
    """Source id -> its address column, from the table of SOURCES.md."""
    defined: dict[str, str] = {}
    for line in SOURCES.read_text(encoding="utf-8").splitlines():
        row = _SOURCE_ROW.match(line)
        if row is not None:
            assert row.group(1) not in defined, f"{row.group(1)} is defined twice"
            defined[row.group(1)] = row.group(3).strip()
    return defined


def _tracked_text_files() -> list[tuple[Path, str]]:
    listed = subprocess.run(
        ["git", "-C", str(REPOSITORY), "ls-files", "-z"], capture_output=True, check=True, timeout=60
    ).stdout.decode("utf-8")
    files = []
    for name in filter(None, listed.split("\0")):
        path = REPOSITORY / name
        try:
            files.append((path, path.read_text(encoding="utf-8")))
        except (UnicodeDecodeError, FileNotFoundError):
            continue  # binary corpus files; files deleted but not yet committed
    return files


def test_sources_table_defines_each_id_once_with_an_address() -> None:
    defined = _defined_sources()

    assert len(defined) >= 20
    without_address = [
        source_id for source_id, address in defined.items() if "https://" not in address and address != "none recorded"
    ]
    assert without_address == []


def test_every_source_id_cited_in_the_policy_files_is_defined_in_sources_md() -> None:
    defined = set(_defined_sources())
    cited: dict[str, set[str]] = {}
    for path in [*sorted(POLICY_DIR.glob("*.yaml")), SOURCES]:
        for source_id in _SOURCE_ID.findall(path.read_text(encoding="utf-8")):
            cited.setdefault(source_id, set()).add(path.name)

    undefined = {source_id: sorted(files) for source_id, files in cited.items() if source_id not in defined}

    assert undefined == {}
    assert {"CMS-OPPS-B", "FDA-MARGENZA", "X12-CARC"} <= set(cited)


def test_every_rule_cites_a_source_or_the_issue(engine: RuleEngine) -> None:
    defined = set(_defined_sources())

    uncited = [
        spec.rule_id
        for spec in engine.rules()
        if not (set(_SOURCE_ID.findall(spec.source)) & defined or "issue" in spec.source or "contract" in spec.source)
    ]

    assert uncited == []


def test_no_tracked_file_points_outside_the_repository() -> None:
    found = []
    for path, text in _tracked_text_files():
        where = path.relative_to(REPOSITORY)
        for pattern in _OUTSIDE_PATHS:
            found += [f"{where}: {match.group(0)}" for match in pattern.finditer(text)]
        for match in _PARENT_PATH.finditer(text):
            target = (path.parent / match.group(1) / match.group(2)).resolve()
            if not target.is_relative_to(REPOSITORY):
                found.append(f"{where}: {match.group(0)}")

    assert found == []
