"""`bundling` rule from CMS's NCCI procedure-to-procedure (PTP) edits, on the lines of a claim with drug lines.

Run only when a policy directory with a PTP table is loaded (`rules.ncci`), the setting's table (practitioner for
professional claims, facility outpatient hospital for institutional ones). A pair is a column 1 and a column 2
code billed on one claim and service date, with an edit in effect on that date (effective date <= date, deletion
date none or >= date). Modifier indicator 0: never paid together; 1: paid when an NCCI-associated modifier
(code_sets.yaml ncci_pair_modifiers) is on either line; 9: not applicable, no finding. The finding goes on the
column 2 line, the one the edit denies.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

from rules.checks.mue import setting_of
from rules.context import ClaimContext, Hit, RuleResult, Skip
from schemas.claim import ClaimLine

PAIR = "CLAIM.BUNDLING.PTP_PAIR"
RULES = (PAIR,)

_NOT_APPLICABLE = 9
_WITH_MODIFIER = 1


def check(ctx: ClaimContext) -> Iterator[RuleResult]:
    ncci = ctx.policy.ncci
    if not ncci.ptp:
        return  # no policy directory (or no PTP table in it): the PTP rule does not run
    setting = setting_of(ctx.claim.claim_type)
    table = ncci.ptp.get(setting)
    if table is None:
        yield Skip(PAIR, f"no {setting.value} PTP table in the policy directory")
        return
    edits = table.edits
    # Fast path (most claims): no date has a column 1 code and one of its column 2 codes; set look-ups only.
    pair_dates = {
        day
        for day, codes in ctx.codes_on.items()
        if len(codes) > 1
        and any((column_2s := edits.get(code)) is not None and not column_2s.keys().isdisjoint(codes) for code in codes)
    }
    if not pair_dates:
        return
    by_date: dict[dt.date, list[tuple[int, ClaimLine]]] = {}
    for position, line in enumerate(ctx.claim.lines):
        if line.service_date in pair_dates:
            by_date.setdefault(line.service_date, []).append((position, line))
    bypass = ctx.policy.code_sets.ncci_pair_modifiers
    flagged: set[int] = set()
    for day, day_lines in by_date.items():
        for _, first in day_lines:
            column_2s = edits.get(first.procedure_code)
            if column_2s is None:
                continue
            for position, second in day_lines:
                pair = column_2s.get(second.procedure_code)
                if pair is None or second is first or position in flagged:
                    continue
                edit = next((e for e in pair if e.in_effect_on(day)), None)
                if edit is None or edit.modifier_indicator == _NOT_APPLICABLE:
                    continue
                if edit.modifier_indicator == _WITH_MODIFIER and (
                    bypass.intersection(first.modifiers) or bypass.intersection(second.modifiers)
                ):
                    continue
                flagged.add(position)
                yield Hit(
                    PAIR,
                    second.line_number,
                    f"lines[{position}].procedure_code",
                    {
                        "column_1": first.procedure_code,
                        "column_1_line": first.line_number,
                        "column_2": second.procedure_code,
                        "service_date": day.isoformat(),
                        "modifier_indicator": edit.modifier_indicator,
                        "modifier_note": (
                            f"modifier indicator 1: {ctx.policy.code_sets.ncci_pair_modifiers_text} on either line "
                            "lets the pair be paid when the services were distinct"
                            if edit.modifier_indicator == _WITH_MODIFIER
                            else "modifier indicator 0: no modifier lets the pair be paid"
                        ),
                        "rationale": edit.rationale or "none given",
                        "table": table.source_file,
                    },
                )
