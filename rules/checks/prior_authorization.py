"""`prior_authorization` rules, where the payer requires it: present, dates cover the drug lines, units.

Units: the claim's drug lines against approved_units; JW waste lines count when the payer's
`prior_authorization_counts_waste` says so (default true, payers.yaml).
"""

from __future__ import annotations

from collections.abc import Iterator

from rules.arithmetic import format_number
from rules.context import ClaimContext, Hit, RuleResult, Skip

MISSING = "CLAIM.PRIOR_AUTHORIZATION.MISSING"
BEFORE = "CLAIM.PRIOR_AUTHORIZATION.BEFORE_VALID_FROM"
EXPIRED = "CLAIM.PRIOR_AUTHORIZATION.EXPIRED"
UNITS = "CLAIM.PRIOR_AUTHORIZATION.UNITS_EXCEEDED"
RULES = (MISSING, BEFORE, EXPIRED, UNITS)


def check(ctx: ClaimContext) -> Iterator[RuleResult]:
    if not ctx.payer.rules.prior_authorization_required:
        return
    authorization = ctx.claim.prior_authorization
    if authorization is None:
        codes = ", ".join(sorted({drug_line.profile.code for drug_line in ctx.drug_lines}))
        yield Hit(MISSING, None, "prior_authorization", {"codes": codes, "payer": ctx.payer_label})
        return
    number = authorization.number
    valid_from, valid_to = authorization.valid_from, authorization.valid_to
    if valid_from is None:
        yield Skip(BEFORE, "prior_authorization.valid_from is missing")
    if valid_to is None:
        yield Skip(EXPIRED, "prior_authorization.valid_to is missing")
    for drug_line in ctx.doses:
        line = drug_line.line
        params = {"code": drug_line.profile.code, "service_date": line.service_date.isoformat(), "number": number}
        if valid_from is not None and line.service_date < valid_from:
            yield Hit(
                BEFORE,
                line.line_number,
                f"{drug_line.path}.service_date",
                {**params, "valid_from": valid_from.isoformat()},
            )
        if valid_to is not None and line.service_date > valid_to:
            yield Hit(
                EXPIRED,
                line.line_number,
                f"{drug_line.path}.service_date",
                {**params, "valid_to": valid_to.isoformat()},
            )
    approved = authorization.approved_units
    if approved is None:
        yield Skip(UNITS, "prior_authorization.approved_units is missing")
        return
    # JW waste lines count when the payer says so (issue 13 B9), as in the history rule (rules/history.py).
    counted = ctx.drug_lines if ctx.payer.rules.prior_authorization_counts_waste else ctx.doses
    total = sum(drug_line.line.units for drug_line in counted)
    if total > approved:
        yield Hit(
            UNITS,
            None,
            "prior_authorization.approved_units",
            {"units": format_number(total), "approved_units": approved, "number": number},
        )
