"""Claim events for the worker's tests: one valid claim.submitted v1 document and the faulty kinds.

The expectations never depend on specific rule findings (the rules evolve separately): a schema failure is
always a `fail` verdict; a valid claim gets whatever outcome the engine gives it, and the tests route by that.
"""

from __future__ import annotations

import json
from typing import Any

# Distinctive patient data: tests search logs, metrics and headers for these strings.
SECRET_MEMBER_PREFIX = "MBRSECRET"
SECRET_BIRTH_DATE = "1931-02-29"  # not a real date: only in the schema-failure claims
SECRET_VALID_BIRTH_DATE = "1932-07-14"


def claim_document(
    claim_id: str, *, member_id: str | None = None, birth_date: str = SECRET_VALID_BIRTH_DATE
) -> dict[str, Any]:
    """A valid claim.submitted v1 document: a J9353 infusion billed to a commercial payer."""
    return {
        "schema_version": 1,
        "event_id": f"evt-{claim_id}",
        "claim_id": claim_id,
        "claim_type": "professional",
        "submitted_on": "2025-03-20",
        "payer": {"id": "COMM-001", "type": "commercial", "name": "Example Health"},
        "patient": {
            "member_id": member_id or f"{SECRET_MEMBER_PREFIX}{claim_id}",
            "birth_date": birth_date,
            "weight_kg": 70.5,
        },
        "billing_provider": {"npi": "1234567893"},
        "place_of_service": "11",
        "diagnoses": ["C50.911"],
        "lines": [
            {
                "line_number": 1,
                "service_date": "2025-03-14",
                "procedure_code": "J9353",
                "units": 60,
                "charge": "1250.00",
                "diagnosis_pointers": [1],
            }
        ],
    }


def valid(claim_id: str) -> bytes:
    return json.dumps(claim_document(claim_id)).encode()


def schema_failure(claim_id: str) -> bytes:
    """Identifiable (claim_id, schema_version 1) but breaks the model: a `fail` verdict with schema findings."""
    document = claim_document(claim_id, birth_date=SECRET_BIRTH_DATE)
    document["lines"][0]["units"] = "sixty"
    return json.dumps(document).encode()


def malformed(claim_id: str) -> bytes:
    """Not JSON at all: a dead letter with reason `not_json`."""
    return b'{"claim_id": "' + claim_id.encode() + b'", "patient": {"member_id": "' + SECRET_MEMBER_PREFIX.encode()


def unknown_version(claim_id: str) -> bytes:
    """A claim from the future: a dead letter with reason `unsupported_schema_version`."""
    document = claim_document(claim_id)
    document["schema_version"] = 2
    return json.dumps(document).encode()


KINDS = {"valid": valid, "schema_failure": schema_failure, "malformed": malformed, "unknown_version": unknown_version}
