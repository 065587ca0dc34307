"""Bytes in, result out: the one path every entry point (offline validate, the worker, benchmarks) shares.

INTERFACE CONTRACT (used by worker/ and bench/; keep stable):
`evaluate_record(raw, engine, *, validated_at, source, max_bytes)` -> `ClaimValidated | DeadLetter`; never raises.
"""

from __future__ import annotations

import datetime as dt

from rules.engine import RuleEngine
from schemas.parsing import (
    DEFAULT_MAX_BYTES,
    DeadLetter,
    DeadLetterReason,
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
    """Parse and validate one record value. A verdict for every identifiable claim, else a dead letter.

    An unexpected exception inside the rules becomes a dead letter with reason `internal_error` carrying only
    the exception type (its message could quote claim data).
    """
    parsed = parse_claim_event(raw, max_bytes=max_bytes)
    try:
        if isinstance(parsed, ParsedClaim):
            return engine.validate(parsed.claim, validated_at=validated_at, source=source)
        if isinstance(parsed, SchemaFailure):
            return engine.verdict_for_schema_failure(parsed, validated_at=validated_at, source=source)
    except Exception as error:  # noqa: BLE001 - one bad claim must never stop the worker
        return DeadLetter(DeadLetterReason.INTERNAL_ERROR, f"rules failed: {type(error).__name__}")
    return parsed
