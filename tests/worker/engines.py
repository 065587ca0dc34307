"""A small scripted rule engine for the loop's unit tests: the claim id says which outcome to return.

`PASS-*` -> pass, `FAIL-*` -> fail with one error finding, `NA-*` -> not_applicable, `BOOM-*` -> the rules raise,
`UNWRITABLE-*` -> a verdict whose finding cannot be written as JSON (a lone surrogate: serialisation raises).
Schema failures become `fail` verdicts with one schema finding per problem, like the real engine.
"""

from __future__ import annotations

import datetime as dt

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

RULESET = RuleSetRef(id="test-rules", version="1.2.3")


def _finding(rule_id: str, *, category: Category, field: str, message: str = "scripted finding") -> Finding:
    return Finding(
        rule_id=rule_id,
        category=category,
        severity=Severity.ERROR,
        line_number=None,
        field=field,
        message=message,
        provider_action="none",
        carc=None,
        rarc=[],
        group_code=None,
    )


class ScriptedEngine:
    """Implements the `RuleEngine` interface the pipeline uses (`ruleset`, `validate`, schema failures)."""

    ruleset = RULESET

    def validate(
        self, claim: ClaimSubmitted, *, validated_at: dt.datetime, source: SourceRecord | None
    ) -> ClaimValidated:
        prefix = claim.claim_id.split("-", 1)[0]
        if prefix == "BOOM":
            raise RuntimeError(f"rules exploded on {claim.patient.member_id}")  # must not leak anywhere
        outcome = {"PASS": Outcome.PASS, "FAIL": Outcome.FAIL, "UNWRITABLE": Outcome.FAIL}.get(
            prefix, Outcome.NOT_APPLICABLE
        )
        message = "\ud800" if prefix == "UNWRITABLE" else "scripted finding"
        findings = (
            [_finding("TEST.UNITS", category=Category.UNITS, field="lines[0].units", message=message)]
            if outcome is Outcome.FAIL
            else []
        )
        return ClaimValidated(
            event_id=verdict_event_id(claim.event_id),
            claim_id=claim.claim_id,
            source_event_id=claim.event_id,
            outcome=outcome,
            findings=findings,
            not_evaluated=[],
            ruleset=RULESET,
            validated_at=validated_at,
            source=source,
        )

    def verdict_for_schema_failure(
        self, failure: SchemaFailure, *, validated_at: dt.datetime, source: SourceRecord | None
    ) -> ClaimValidated:
        return ClaimValidated(
            event_id=verdict_event_id(failure.event_id),
            claim_id=failure.claim_id,
            source_event_id=failure.event_id,
            outcome=Outcome.FAIL,
            findings=[
                _finding(f"SCHEMA.{problem.error_type.upper()}", category=Category.SCHEMA, field=problem.field)
                for problem in failure.problems
            ],
            not_evaluated=[],
            ruleset=RULESET,
            validated_at=validated_at,
            source=source,
        )
