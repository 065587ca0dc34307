"""Load the table-driven rule cases of `tests/rules/cases/` (format in cases/README.md)."""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

CASES_DIR = Path(__file__).parent / "cases"


@dataclass(frozen=True)
class RuleCase:
    name: str
    file: str
    document: dict[str, Any]
    findings: list[str]
    not_evaluated: list[str] | None
    outcome: str | None
    message_contains: dict[str, str] = field(default_factory=dict)
    # The file's CMS edit tables (`ncci_tables:`, see cases/README.md), or None: judged without a policy directory.
    ncci_tables: dict[str, Any] | None = None

    def raw(self) -> bytes:
        return json.dumps(self.document).encode("utf-8")


def load_bases() -> dict[str, dict[str, Any]]:
    bases: dict[str, dict[str, Any]] = yaml.safe_load((CASES_DIR / "bases.yaml").read_text(encoding="utf-8"))
    return bases


def _walk(document: Any, path: str) -> tuple[Any, str | int]:
    parts = path.split(".")
    node = document
    for part in parts[:-1]:
        node = node[int(part)] if isinstance(node, list) else node[part]
    last = parts[-1]
    return node, int(last) if isinstance(node, list) else last


def apply_patch(base: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    document = copy.deepcopy(base)
    for path, value in (patch.get("set") or {}).items():
        parent, key = _walk(document, path)
        parent[key] = copy.deepcopy(value)
    for path in patch.get("unset") or []:
        parent, key = _walk(document, path)
        del parent[key]
    for path, value in (patch.get("append") or {}).items():
        parent, key = _walk(document, path)
        # A list appends each of its items (several lines at once); anything else is one item.
        items = value if isinstance(value, list) else [value]
        parent[key].extend(copy.deepcopy(items))
    return document


def load_cases() -> list[RuleCase]:
    bases = load_bases()
    cases: list[RuleCase] = []
    for path in sorted(CASES_DIR.glob("*.yaml")):
        if path.name == "bases.yaml":
            continue
        content = yaml.safe_load(path.read_text(encoding="utf-8"))
        unknown_top = set(content) - {"cases", "ncci_tables"}
        if unknown_top:
            raise ValueError(f"{path.name}: unknown top-level keys {sorted(unknown_top)}")
        for entry in content["cases"]:
            unknown = set(entry) - {"name", "base", "patch", "findings", "not_evaluated", "outcome", "message_contains"}
            if unknown:
                raise ValueError(f"{path.name}: case {entry.get('name')}: unknown keys {sorted(unknown)}")
            document = apply_patch(bases[entry["base"]], entry.get("patch") or {})
            document["event_id"] = f"evt-case-{entry['name']}"
            cases.append(
                RuleCase(
                    name=entry["name"],
                    file=path.name,
                    document=document,
                    findings=list(entry["findings"]),
                    not_evaluated=entry.get("not_evaluated"),
                    outcome=entry.get("outcome"),
                    message_contains=entry.get("message_contains") or {},
                    ncci_tables=content.get("ncci_tables"),
                )
            )
    names = [case.name for case in cases]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ValueError(f"case names used more than once: {duplicates}")
    return cases
