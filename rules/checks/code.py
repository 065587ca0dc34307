"""`code` rules on drug lines: a profiled code billed before its effective date (CARC 181)."""

from __future__ import annotations

from collections.abc import Iterator

from rules.context import ClaimContext, Hit, ProfileRuleId, RuleResult

BEFORE_EFFECTIVE_DATE = ProfileRuleId("{code}.CODE.BEFORE_EFFECTIVE_DATE")
RULES = (BEFORE_EFFECTIVE_DATE.template,)


def check(ctx: ClaimContext) -> Iterator[RuleResult]:
    for drug_line in ctx.drug_lines:
        effective_from = drug_line.profile.effective_from
        service_date = drug_line.line.service_date
        if effective_from is not None and service_date < effective_from:
            yield Hit(
                BEFORE_EFFECTIVE_DATE.for_code(drug_line.profile.code),
                drug_line.line.line_number,
                f"{drug_line.path}.service_date",
                {
                    "code": drug_line.profile.code,
                    "service_date": service_date.isoformat(),
                    "effective_from": effective_from.isoformat(),
                },
            )
