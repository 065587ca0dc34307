"""Hypothesis: 10,000 claim-like documents through the offline path; none raises, every result can be published.

The worker publishes what `evaluate_record` returns: a verdict as JSON keyed by its claim id, or the original
record with dead-letter headers. So beyond "no exception" each result must be publishable, and its messages must
not quote the patient data every generated document carries.
"""

from __future__ import annotations

import datetime as dt
import json

import pytest
from hypothesis import HealthCheck, given, settings

from rules.engine import RuleEngine, load_engine
from rules.pipeline import evaluate_record
from schemas.parsing import DeadLetter, DeadLetterReason
from schemas.verdict import Category, ClaimValidated, Outcome
from tests.reliability.strategies import BIRTH_DATE, MEMBER_ID, claim_like_bytes

VALIDATED_AT = dt.datetime(2025, 4, 1, 12, 0, tzinfo=dt.UTC)
ENGINE: RuleEngine = load_engine()
SERIALIZE = ClaimValidated.__pydantic_serializer__.to_json


@pytest.mark.timeout(280)
@settings(max_examples=10_000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=claim_like_bytes())
def test_ten_thousand_claim_like_documents_each_end_as_a_publishable_verdict_or_dead_letter(raw: bytes) -> None:
    result = evaluate_record(raw, ENGINE, validated_at=VALIDATED_AT)

    if isinstance(result, DeadLetter):
        assert result.reason in DeadLetterReason
        assert result.reason is not DeadLetterReason.INTERNAL_ERROR, result.error
        messages = [result.error]
    else:
        assert isinstance(result, ClaimValidated)
        published = json.loads(SERIALIZE(result))  # the worker's own serializer: must not raise
        assert published["claim_id"].encode().decode() == result.claim_id
        if any(finding.category is Category.SCHEMA for finding in result.findings):
            assert result.outcome is Outcome.FAIL
        messages = [json.dumps(published["findings"])]
    for message in messages:
        assert MEMBER_ID not in message
        assert BIRTH_DATE not in message
