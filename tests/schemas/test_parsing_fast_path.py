"""The duplicate-key check of valid claims parses integers in C and falls back for integers too long for int()."""

from __future__ import annotations

import json

from schemas.parsing import DeadLetter, DeadLetterReason, ParsedClaim, parse_claim_event
from tests.worker.claims import claim_document


def _with_unknown_field(literal: str) -> bytes:
    text = json.dumps(claim_document("CLM-1"))
    return ('{"note": ' + literal + ", " + text[1:]).encode()


def test_a_valid_claim_with_a_huge_integer_in_an_unknown_field_is_parsed() -> None:
    assert isinstance(parse_claim_event(_with_unknown_field("9" * 5000)), ParsedClaim)


def test_a_duplicate_key_after_a_huge_integer_is_still_found() -> None:
    raw = _with_unknown_field("9" * 5000).replace(b'"claim_id": "CLM-1"', b'"claim_id": "CLM-1", "claim_id": "CLM-2"')

    result = parse_claim_event(raw)

    assert isinstance(result, DeadLetter)
    assert result.reason is DeadLetterReason.NOT_JSON
