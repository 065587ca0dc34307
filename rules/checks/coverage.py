"""`coverage` rules: a drug line for a patient the drug's coverage criteria do not accept (issue 13 B14: age).

The patient's age in whole years on the line's service date, from `patient.birth_date`, against the profile's
min_age_years. The birth date is patient data: findings say "under 18", never the date or the age itself.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

from rules.context import ClaimContext, Hit, ProfileRuleId, RuleResult, Skip

UNDER_MIN_AGE = ProfileRuleId("{code}.COVERAGE.UNDER_MIN_AGE")
RULES = (UNDER_MIN_AGE.template,)


def check(ctx: ClaimContext) -> Iterator[RuleResult]:
    birth_date = ctx.claim.patient.birth_date
    flagged: set[str] = set()
    for drug_line in ctx.doses:
        profile = drug_line.profile
        min_age = profile.min_age_years
        if min_age is None or profile.code in flagged:
            continue
        if birth_date is None:
            flagged.add(profile.code)
            yield Skip(UNDER_MIN_AGE.for_code(profile.code), "patient.birth_date is not on the claim")
            continue
        service_date = drug_line.line.service_date
        if age_on(birth_date, service_date) < min_age:
            flagged.add(profile.code)
            yield Hit(
                UNDER_MIN_AGE.for_code(profile.code),
                drug_line.line.line_number,
                "patient.birth_date",
                {
                    "code": profile.code,
                    "drug": profile.drug,
                    "min_age": min_age,
                    "service_date": service_date.isoformat(),
                },
            )


def age_on(birth_date: dt.date, day: dt.date) -> int:
    """Whole years from `birth_date` to `day` (a birthday on 29 February counts from 1 March in other years)."""
    before_birthday = (day.month, day.day) < (birth_date.month, birth_date.day)
    return day.year - birth_date.year - before_birthday
