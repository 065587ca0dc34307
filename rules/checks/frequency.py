"""`frequency` rules: two doses of the same code on the claim closer than the minimum interval.

Lines of one service date are one dose (summed by the `units` rules, issue 13 B2): never a frequency finding.
The minimum interval after a dose is the payer's own (`min_days_between_doses` in payers.yaml), else the label
schedule of that dose's size when the profile has dose-dependent schedules (issue 13 B11: atezolizumab 1680 mg
every 4 weeks), else the profile's `min_days_between_doses`. A dose's size is its date's billed units x the unit
size (what the payer sees; the administration record may be missing).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from itertools import pairwise

from rules.context import ClaimContext, DrugLine, Hit, ProfileRuleId, RuleResult

TOO_SOON = ProfileRuleId("{code}.FREQUENCY.TOO_SOON")
RULES = (TOO_SOON.template,)


def check(ctx: ClaimContext) -> Iterator[RuleResult]:
    if len(ctx.doses) < 2:
        return
    by_code: dict[str, dict[dt.date, list[DrugLine]]] = {}
    for (code, service_date), (doses, _) in ctx.drug_groups.items():
        if doses:
            by_code.setdefault(code, {})[service_date] = doses
    overrides = ctx.payer.rules.min_days_between_doses
    for code, by_date in by_code.items():
        if len(by_date) < 2:
            continue
        for previous_date, service_date in pairwise(sorted(by_date)):
            previous = by_date[previous_date]
            profile = previous[0].profile
            if code in overrides:
                min_days, basis = overrides[code], f"{ctx.payer_label} policy"
            else:
                min_days, basis = profile.min_days_after(sum(d.line.units for d in previous) * profile.unit_mg)
            days = (service_date - previous_date).days
            if days < min_days:
                current = min(by_date[service_date], key=lambda drug_line: drug_line.line.line_number)
                yield Hit(
                    TOO_SOON.for_code(code),
                    current.line.line_number,
                    f"{current.path}.service_date",
                    {
                        "code": code,
                        "previous_date": previous_date.isoformat(),
                        "service_date": service_date.isoformat(),
                        "days": days,
                        "min_days": min_days,
                        "basis": basis,
                    },
                )
