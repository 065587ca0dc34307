"""`place_of_service` rule (warning): a professional drug claim billed from an unusual place of service."""

from __future__ import annotations

from collections.abc import Iterator

from rules.context import ClaimContext, Hit, RuleResult
from schemas.claim import ClaimType

UNUSUAL = "CLAIM.PLACE_OF_SERVICE.UNUSUAL"
RULES = (UNUSUAL,)


def check(ctx: ClaimContext) -> Iterator[RuleResult]:
    claim = ctx.claim
    code_sets = ctx.policy.code_sets
    # Institutional claims carry a type of bill instead of a place of service ([NUBC-UB04] in rules/policy/SOURCES.md).
    if claim.claim_type is not ClaimType.PROFESSIONAL or claim.place_of_service is None:
        return
    if claim.place_of_service in code_sets.expected_places_of_service:
        return
    yield Hit(
        UNUSUAL,
        None,
        "place_of_service",
        {
            "place_of_service": claim.place_of_service,
            "codes": ", ".join(sorted({drug_line.profile.code for drug_line in ctx.drug_lines})),
            "expected": code_sets.expected_places_of_service_text,
        },
    )
