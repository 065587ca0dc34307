"""The committed JSON Schema files are the contract other teams build against: they must match the models."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from schemas.export import CONTRACTS, SCHEMA_DIR, json_schema_documents, render, write_json_schemas
from worker.cli import main


@pytest.mark.parametrize("file_name", sorted(CONTRACTS))
def test_committed_schema_file_matches_the_model(file_name: str) -> None:
    committed = (SCHEMA_DIR / file_name).read_text(encoding="utf-8")
    assert committed == render(json_schema_documents()[file_name]), (
        f"schemas/json/{file_name} drifted from the model: run `claims-worker schema` and commit the result"
    )


def test_schema_command_writes_every_contract(tmp_path: Path) -> None:
    assert main(["schema", "--dir", str(tmp_path)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(CONTRACTS)
    submitted = json.loads((tmp_path / "claim.submitted.v1.json").read_text(encoding="utf-8"))
    assert submitted["properties"]["schema_version"]["const"] == 1
    assert set(submitted["required"]) >= {"schema_version", "event_id", "claim_id", "payer", "patient", "lines"}


def test_schema_check_reports_a_stale_file(tmp_path: Path) -> None:
    write_json_schemas(tmp_path)
    assert main(["schema", "--dir", str(tmp_path), "--check"]) == 0
    (tmp_path / "claim.validated.v1.json").write_text("{}\n", encoding="utf-8")
    assert main(["schema", "--dir", str(tmp_path), "--check"]) == 1


def test_verdict_schema_lists_the_closed_finding_categories() -> None:
    validated = json_schema_documents()["claim.validated.v1.json"]
    categories = validated["$defs"]["Category"]["enum"]
    assert categories == [
        "schema",
        "code",
        "drug_code_mismatch",
        "diagnosis",
        "units",
        "waste",
        "modifier_25",
        "administration",
        "documentation",
        "timely_filing",
        "prior_authorization",
        "frequency",
        "place_of_service",
        "ndc",
        "duplicate",
        "bundling",
        "coverage",
    ]
    assert validated["properties"]["outcome"]["$ref"] == "#/$defs/Outcome"
    assert validated["$defs"]["Outcome"]["enum"] == ["pass", "fail", "not_applicable"]
