"""The committed JSON Schema files of the event contracts, generated from the pydantic models.

Teams in other languages build against `schemas/json/*.json`; a test fails when those files drift from the
models, and `claims-worker schema` rewrites them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel

from schemas.claim import ClaimSubmitted
from schemas.verdict import ClaimValidated

SCHEMA_DIR = Path(__file__).parent / "json"

CONTRACTS: dict[str, type[BaseModel]] = {
    "claim.submitted.v1.json": ClaimSubmitted,
    "claim.validated.v1.json": ClaimValidated,
}


def json_schema_documents() -> dict[str, dict[str, Any]]:
    """File name -> JSON Schema document (draft 2020-12) for each event contract."""
    documents = {}
    for file_name, model in CONTRACTS.items():
        # Input events are validated as sent, output events as the worker serialises them.
        mode: Literal["validation", "serialization"] = "validation" if model is ClaimSubmitted else "serialization"
        schema = model.model_json_schema(mode=mode)
        documents[file_name] = {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": file_name,
            **schema,
        }
    return documents


def render(document: dict[str, Any]) -> str:
    """The exact text committed for a schema document (stable key order, trailing newline)."""
    return json.dumps(document, indent=2, sort_keys=True) + "\n"


def write_json_schemas(directory: Path = SCHEMA_DIR) -> list[Path]:
    """Write every contract's schema file into `directory`; returns the paths written."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for file_name, document in json_schema_documents().items():
        path = directory / file_name
        path.write_text(render(document), encoding="utf-8")
        written.append(path)
    return written
