"""The rule engine: every rule runs on a claim, findings are sorted, the outcome follows from them.

INTERFACE CONTRACT (used by worker/ and bench/; keep these signatures stable):

- `RuleEngine.ruleset` -> `RuleSetRef` (id and version carried by every verdict).
- `RuleEngine.validate(claim, *, validated_at, source)` -> `ClaimValidated`.
- `RuleEngine.with_unknown_fields(verdict, unknown_fields)` -> `ClaimValidated` (plus SCHEMA.UNKNOWN_FIELD warnings).
- `RuleEngine.verdict_for_schema_failure(failure, *, validated_at, source)` -> `ClaimValidated`.
- `load_engine(payer_policy_file=None, policy_dir=None)` -> `RuleEngine` from the shipped policy data (plus a user
  payer file and a policy directory of CMS edit tables).

Scope (issue 4): the rules of a drug profile apply to the lines billed with its code ("drug lines"); the
claim-level rules run on claims with at least one drug line; the CROSSWALK rules run on every claim. Outcome:
`fail` if any finding is an error, else `pass` if any line is billed with a profiled code, else
`not_applicable`. Findings are sorted by line (claim-level first), rule id, field.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path

from rules.checks import ALL_CHECKS, EVERY_CLAIM_CHECKS, Check
from rules.context import Hit, Skip, build_context
from rules.history import RULES as HISTORY_RULES
from rules.history import Judgement
from rules.ids import verdict_id
from rules.loading import PolicyError, load_policy
from rules.policy_tables import Policy, RuleSpec
from rules.schema_findings import RULES as SCHEMA_RULES
from rules.schema_findings import schema_rule_id, unknown_field_hits
from schemas.claim import ClaimSubmitted
from schemas.parsing import SchemaFailure
from schemas.unknown_fields import UnknownField
from schemas.verdict import (
    ClaimValidated,
    Finding,
    NotEvaluated,
    Outcome,
    RuleSetRef,
    Severity,
    SourceRecord,
)

__all__ = ["PolicyError", "RuleEngine", "load_engine"]


def _finding_order(finding: Finding) -> tuple[bool, int, str, str]:
    return (finding.line_number is not None, finding.line_number or 0, finding.rule_id, finding.field)


class RuleEngine:
    """Validates claims against one immutable `Policy`; safe to share between threads. Build with `load_engine`."""

    __slots__ = ("_catalogue", "_policy", "_runs_with_drug_lines", "_runs_without_drug_lines")

    def __init__(self, policy: Policy) -> None:
        _verify_catalogue(policy, ALL_CHECKS)
        self._policy = policy
        self._catalogue = policy.catalogue
        # A claim with a drug line runs every check; any other claim only the checks for every claim (crosswalk).
        self._runs_with_drug_lines = tuple(check.run for check in ALL_CHECKS)
        self._runs_without_drug_lines = tuple(check.run for check in EVERY_CLAIM_CHECKS)

    def __repr__(self) -> str:
        ruleset = self._policy.ruleset
        return (
            f"<RuleEngine ruleset={ruleset.id}@{ruleset.version} rules={len(self._catalogue)} "
            f"profiles={','.join(self._policy.profiles)} named_payers={len(self._policy.named_payers)}>"
        )

    @property
    def ruleset(self) -> RuleSetRef:
        return self._policy.ruleset

    @property
    def policy(self) -> Policy:
        return self._policy

    def rules(self) -> tuple[RuleSpec, ...]:
        """The rule catalogue (profile rules expanded per profile), sorted by rule id."""
        return tuple(self._catalogue[rule_id] for rule_id in sorted(self._catalogue))

    def validate(
        self, claim: ClaimSubmitted, *, validated_at: dt.datetime, source: SourceRecord | None
    ) -> ClaimValidated:
        """Run every rule on `claim`. `validated_at` must be timezone-aware (ValueError otherwise).

        A claim without `submitted_on` is taken as filed on the UTC date of `validated_at`.
        """
        _require_aware(validated_at)
        ctx = build_context(claim, self._policy, validated_at)
        runs = self._runs_with_drug_lines if ctx.drug_lines else self._runs_without_drug_lines
        findings: list[Finding] = []
        skips: list[Skip] = []
        catalogue = self._catalogue
        has_error = False
        for run in runs:
            for result in run(ctx):
                if isinstance(result, Hit):
                    spec = catalogue[result.rule_id]
                    has_error = has_error or spec.severity is Severity.ERROR
                    findings.append(_finding(spec, result))
                else:
                    skips.append(result)
        if len(findings) > 1:
            findings.sort(key=_finding_order)
        if has_error:
            outcome = Outcome.FAIL
        elif ctx.drug_lines:
            outcome = Outcome.PASS
        else:
            outcome = Outcome.NOT_APPLICABLE
        return ClaimValidated(
            schema_version=1,
            event_id=verdict_id(claim.event_id),
            claim_id=claim.claim_id,
            source_event_id=claim.event_id,
            outcome=outcome,
            findings=findings,
            not_evaluated=_not_evaluated(skips),
            ruleset=self._policy.ruleset,
            validated_at=validated_at,
            source=source,
        )

    def with_unknown_fields(self, verdict: ClaimValidated, unknown_fields: Sequence[UnknownField]) -> ClaimValidated:
        """`verdict` with a SCHEMA.UNKNOWN_FIELD warning per unknown field (`schemas.parsing.ParsedClaim`); warnings
        never change the outcome."""
        if not unknown_fields:
            return verdict
        extra = [_finding(self._catalogue[hit.rule_id], hit) for hit in unknown_field_hits(unknown_fields)]
        return verdict.model_copy(update={"findings": sorted([*verdict.findings, *extra], key=_finding_order)})

    def with_history(self, verdict: ClaimValidated, judgement: Judgement) -> ClaimValidated:
        """`verdict` (of a claim with drug lines) with what the claim history says (`rules.history.judge`).

        The history findings join the others and the outcome is decided again; a void (frequency code 8) is
        `not_applicable` with the history findings only (its own lines are not judged: it cancels a claim).
        """
        extra = [_finding(self._catalogue[hit.rule_id], hit) for hit in judgement.hits]
        if judgement.void:
            extra.sort(key=_finding_order)
            return verdict.model_copy(
                update={"outcome": Outcome.NOT_APPLICABLE, "findings": extra, "not_evaluated": []}
            )
        if not extra:
            return verdict
        findings = sorted([*verdict.findings, *extra], key=_finding_order)
        failed = any(finding.severity is Severity.ERROR for finding in extra)
        return verdict.model_copy(update={"findings": findings, "outcome": Outcome.FAIL if failed else verdict.outcome})

    def verdict_for_schema_failure(
        self, failure: SchemaFailure, *, validated_at: dt.datetime, source: SourceRecord | None
    ) -> ClaimValidated:
        """A `fail` verdict with one `schema` finding per problem (SCHEMA.MISSING_FIELD, WRONG_TYPE, ...), and a
        SCHEMA.UNKNOWN_FIELD warning per unknown field."""
        _require_aware(validated_at)
        findings = []
        for problem in failure.problems:
            spec = self._catalogue[schema_rule_id(problem.error_type)]
            hit = Hit(
                spec.rule_id,
                problem.line_number,
                problem.field,
                {"field": problem.field or "claim", "detail": problem.message},
            )
            findings.append(_finding(spec, hit))
        findings.extend(
            _finding(self._catalogue[hit.rule_id], hit) for hit in unknown_field_hits(failure.unknown_fields)
        )
        findings.sort(key=_finding_order)
        return ClaimValidated(
            schema_version=1,
            event_id=verdict_id(failure.event_id),
            claim_id=failure.claim_id,
            source_event_id=failure.event_id,
            outcome=Outcome.FAIL,
            findings=findings,
            not_evaluated=[],
            ruleset=self._policy.ruleset,
            validated_at=validated_at,
            source=source,
        )


def load_engine(payer_policy_file: Path | None = None, policy_dir: Path | None = None) -> RuleEngine:
    """Build the engine from the shipped policy data, with an optional user payer policy file and an optional
    policy directory of CMS edit tables (`claims-worker policy import-mue|import-ptp`).

    Loads and validates every file under `rules/policy/` and the ICD-10-CM code set (about 0.5 s in all;
    see `rules.icd10cm`). Raises `PolicyError` (with the file and field at fault) when a file is invalid.
    """
    return RuleEngine(load_policy(payer_policy_file, policy_dir=policy_dir))


def _finding(spec: RuleSpec, hit: Hit) -> Finding:
    return Finding(
        rule_id=spec.rule_id,
        category=spec.category,
        severity=spec.severity,
        line_number=hit.line_number,
        field=hit.field,
        message=spec.message.format_map(hit.params),
        provider_action=spec.provider_action.format_map(hit.params),
        carc=spec.carc,
        rarc=list(spec.rarc),
        group_code=spec.group_code,
    )


def _not_evaluated(skips: list[Skip]) -> list[NotEvaluated]:
    if not skips:
        return []
    return [NotEvaluated(rule_id=rule_id, reason=reason) for rule_id, reason in sorted(set(skips))]


def _require_aware(validated_at: dt.datetime) -> None:
    if validated_at.utcoffset() is None:
        raise ValueError("validated_at must be a timezone-aware datetime")


def _verify_catalogue(policy: Policy, checks: tuple[Check, ...]) -> None:
    """Every rule the code can emit has a catalogue entry, and every catalogue entry is implemented.

    The history rules (`rules.history`) run in the worker's history stage, not in `validate`, but share the catalogue.
    """
    implemented = {rule_id for check in checks for rule_id in check.rules} | set(SCHEMA_RULES) | set(HISTORY_RULES)
    missing = sorted(implemented - policy.rule_templates)
    unknown = sorted(policy.rule_templates - implemented)
    if missing or unknown:
        problems = []
        if missing:
            problems.append(f"rules without a catalogue entry: {', '.join(missing)}")
        if unknown:
            problems.append(f"catalogue entries no check implements: {', '.join(unknown)}")
        raise PolicyError("rules/policy/rules.yaml: " + "; ".join(problems))
