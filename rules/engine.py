"""The rule engine: every rule runs on a claim, findings are sorted, the outcome follows from them.

INTERFACE CONTRACT (used by worker/ and bench/; keep these signatures stable):

- `RuleEngine.ruleset` -> `RuleSetRef` (id and version carried by every verdict).
- `RuleEngine.validate(claim, *, validated_at, source)` -> `ClaimValidated`.
- `RuleEngine.verdict_for_schema_failure(failure, *, validated_at, source)` -> `ClaimValidated`.
- `load_engine(payer_policy_file=None)` -> `RuleEngine` from the shipped policy data (plus a user payer file).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from schemas.claim import ClaimSubmitted
from schemas.parsing import SchemaFailure
from schemas.verdict import (
    Category,
    ClaimValidated,
    Finding,
    Outcome,
    RuleSetRef,
    Severity,
    SourceRecord,
    verdict_event_id,
)


class RuleEngine:
    """Placeholder engine: replaced by the rules issue. Interface is final, behaviour is not."""

    def __init__(self, ruleset: RuleSetRef) -> None:
        self._ruleset = ruleset

    @property
    def ruleset(self) -> RuleSetRef:
        return self._ruleset

    def validate(
        self, claim: ClaimSubmitted, *, validated_at: dt.datetime, source: SourceRecord | None
    ) -> ClaimValidated:
        return ClaimValidated(
            event_id=verdict_event_id(claim.event_id),
            claim_id=claim.claim_id,
            source_event_id=claim.event_id,
            outcome=Outcome.NOT_APPLICABLE,
            findings=[],
            not_evaluated=[],
            ruleset=self._ruleset,
            validated_at=validated_at,
            source=source,
        )

    def verdict_for_schema_failure(
        self, failure: SchemaFailure, *, validated_at: dt.datetime, source: SourceRecord | None
    ) -> ClaimValidated:
        findings = [
            Finding(
                rule_id="SCHEMA." + problem.error_type.upper(),
                category=Category.SCHEMA,
                severity=Severity.ERROR,
                line_number=problem.line_number,
                field=problem.field,
                message=problem.message,
                provider_action="Correct the field and resubmit the claim event.",
                carc=None,
                rarc=[],
                group_code=None,
            )
            for problem in failure.problems
        ]
        return ClaimValidated(
            event_id=verdict_event_id(failure.event_id),
            claim_id=failure.claim_id,
            source_event_id=failure.event_id,
            outcome=Outcome.FAIL,
            findings=findings,
            not_evaluated=[],
            ruleset=self._ruleset,
            validated_at=validated_at,
            source=source,
        )


def load_engine(payer_policy_file: Path | None = None) -> RuleEngine:
    """Build the engine from the shipped policy data, with an optional user payer policy file."""
    del payer_policy_file
    return RuleEngine(RuleSetRef(id="j9353", version="0.0.0-placeholder"))
