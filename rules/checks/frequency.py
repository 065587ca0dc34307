"""`frequency` rules: two doses of the same code on the claim closer than the minimum interval.

Lines of one service date are one dose (summed by the `units` rules, issue 13 B2): never a frequency finding.
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import pairwise

from rules.context import ClaimContext, DrugLine, Hit, ProfileRuleId, RuleResult

TOO_SOON = ProfileRuleId("{code}.FREQUENCY.TOO_SOON")
RULES = (TOO_SOON.template,)


def check(ctx: ClaimContext) -> Iterator[RuleResult]:
    if len(ctx.doses) < 2:
        return
    by_code: dict[str, list[DrugLine]] = {}
    for drug_line in ctx.doses:
        by_code.setdefault(drug_line.profile.code, []).append(drug_line)
    overrides = ctx.payer.rules.min_days_between_doses
    for code, doses in by_code.items():
        if len(doses) < 2:
            continue
        if code in overrides:
            min_days, basis = overrides[code], f"{ctx.payer_label} policy"
        else:
            min_days, basis = doses[0].profile.min_days_between_doses, "label schedule with tolerance"
        ordered = sorted(doses, key=lambda drug_line: (drug_line.line.service_date, drug_line.line.line_number))
        for previous, current in pairwise(ordered):
            days = (current.line.service_date - previous.line.service_date).days
            if 0 < days < min_days:
                yield Hit(
                    TOO_SOON.for_code(code),
                    current.line.line_number,
                    f"{current.path}.service_date",
                    {
                        "code": code,
                        "previous_date": previous.line.service_date.isoformat(),
                        "service_date": current.line.service_date.isoformat(),
                        "days": days,
                        "min_days": min_days,
                        "basis": basis,
                    },
                )
