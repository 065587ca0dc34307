"""Bytes in, result out: the one path every entry point (offline validate, the worker, benchmarks) shares.

INTERFACE CONTRACT (used by worker/ and bench/; keep stable):
`evaluate_record(raw, engine, *, validated_at, source, max_bytes)` -> `ClaimValidated | DeadLetter`;
`validate_record(...)` -> the same, keeping the parsed claim (`Validated(verdict, claim)`).

It raises only on a bug (in the parser or a rule); the entry points call it through
`worker.evaluator.evaluate_claim_bytes`, the one guard that turns such an exception into an `internal_error`
dead letter.
"""

from __future__ import annotations

import datetime as dt
from typing import NamedTuple, assert_never

from rules.engine import RuleEngine
from schemas.claim import ClaimSubmitted
from schemas.parsing import (
    DEFAULT_MAX_BYTES,
    DeadLetter,
    ParsedClaim,
    SchemaFailure,
    parse_claim_event,
)
from schemas.verdict import ClaimValidated, SourceRecord


def evaluate_record(
    raw: bytes,
    engine: RuleEngine,
    *,
    validated_at: dt.datetime,
    source: SourceRecord | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> ClaimValidated | DeadLetter:
    """Parse and validate one record value: a verdict for every identifiable claim, else a dead letter."""
    result = validate_record(raw, engine, validated_at=validated_at, source=source, max_bytes=max_bytes)
    return result if isinstance(result, DeadLetter) else result.verdict


class Validated(NamedTuple):
    """A verdict, and the claim it judges (None for a schema failure: no claim could be read)."""

    verdict: ClaimValidated
    claim: ClaimSubmitted | None


def validate_record(
    raw: bytes,
    engine: RuleEngine,
    *,
    validated_at: dt.datetime,
    source: SourceRecord | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> Validated | DeadLetter:
    """`evaluate_record`, keeping the parsed claim (the claim-history stage reads its facts)."""
    parsed = parse_claim_event(raw, max_bytes=max_bytes)
    match parsed:
        case ParsedClaim(claim=claim, unknown_fields=unknown):
            verdict = engine.validate(claim, validated_at=validated_at, source=source)
            return Validated(engine.with_unknown_fields(verdict, unknown) if unknown else verdict, claim)
        case SchemaFailure():
            return Validated(engine.verdict_for_schema_failure(parsed, validated_at=validated_at, source=source), None)
        case DeadLetter():
            return parsed
        case _:
            assert_never(parsed)
