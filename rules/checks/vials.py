"""Vial arithmetic (`waste` rules): the administered and discarded amounts against whole single-dose vials.

Per code and service date, with A = the drug lines' administered_mg and D = their discarded_mg (summed, as the
waste rules sum D), and the profile's single-dose vial sizes (profiles.yaml single_dose_vials_mg):
- D is what remains of the last vial opened, so it is less than one vial: D >= the largest vial size means at
  least one whole vial was counted as waste (an error: the JW line bills drug that was never opened).
- A + D is what the opened vials held, so it is a whole number of vials of the profile's sizes (a warning: the
  record or the billing of one of the two amounts is wrong).
A profile without vial sizes is not checked, nor a line whose NDC or drug name is another code's: its vials are
not this profile's, and the crosswalk rules already say the code is wrong.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

from rules.arithmetic import format_number
from rules.context import ClaimContext, DrugLine, Hit, ProfileRuleId, RuleResult, Skip
from rules.policy_tables import lookup_drug_code

DISCARD_EXCEEDS_LAST_VIAL = ProfileRuleId("{code}.WASTE.DISCARD_EXCEEDS_LAST_VIAL")
NOT_WHOLE_VIALS = ProfileRuleId("{code}.WASTE.NOT_WHOLE_VIALS")
RULES = (DISCARD_EXCEEDS_LAST_VIAL.template, NOT_WHOLE_VIALS.template)

# Amounts are documented in mg, possibly with decimals: equal within a thousandth of a mg (float noise only).
_MG_TOLERANCE = 0.001


def check(ctx: ClaimContext) -> Iterator[RuleResult]:
    for (_, service_date), (doses, _) in ctx.drug_groups.items():
        if doses and doses[0].profile.single_dose_vials_mg:
            yield from _group(ctx, service_date, doses)


def _billed_for_another_code(ctx: ClaimContext, drug_line: DrugLine) -> str | None:
    """The other code the line's NDC or drug name belongs to (codes.yaml), if any."""
    line = drug_line.line
    code = drug_line.profile.code
    if line.ndc is not None:
        by_ndc = ctx.policy.code_by_ndc.get(line.ndc.code)
        if by_ndc is not None and by_ndc != code:
            return by_ndc
    drug = None if line.administration is None else line.administration.drug
    by_name = None if drug is None else lookup_drug_code(ctx.policy.code_by_drug_name, drug)
    return by_name if by_name is not None and by_name != code else None


def _group(ctx: ClaimContext, service_date: dt.date, doses: list[DrugLine]) -> Iterator[RuleResult]:
    profile = doses[0].profile
    code = profile.code
    administered = discarded = 0.0
    for drug_line in doses:
        other = _billed_for_another_code(ctx, drug_line)
        if other is not None:
            reason = f"line {drug_line.line.line_number}: the drug given is billed with {other}, not {code}"
            yield Skip(DISCARD_EXCEEDS_LAST_VIAL.for_code(code), reason)
            yield Skip(NOT_WHOLE_VIALS.for_code(code), reason)
            return
        record = drug_line.line.administration
        if record is None or record.administered_mg is None or record.discarded_mg is None:
            reason = f"line {drug_line.line.line_number}: administered_mg or discarded_mg is not documented"
            yield Skip(DISCARD_EXCEEDS_LAST_VIAL.for_code(code), reason)
            yield Skip(NOT_WHOLE_VIALS.for_code(code), reason)
            return
        administered += record.administered_mg
        discarded += record.discarded_mg
    sizes = profile.single_dose_vials_mg
    largest = sizes[0]  # largest first (rules.loading)
    exceeds = discarded >= largest - _MG_TOLERANCE
    whole = fills_whole_vials(administered + discarded, sizes)
    if not exceeds and whole:
        return
    first = doses[0]
    params = {
        "code": code,
        "service_date": service_date.isoformat(),
        "administered_mg": format_number(administered),
        "discarded_mg": format_number(discarded),
        "vials_mg": " or ".join(format_number(size) for size in sizes),
    }
    if exceeds:
        yield Hit(
            DISCARD_EXCEEDS_LAST_VIAL.for_code(code),
            first.line.line_number,
            f"{first.path}.administration.discarded_mg",
            {**params, "largest_vial_mg": format_number(largest)},
        )
    if not whole:
        yield Hit(
            NOT_WHOLE_VIALS.for_code(code),
            first.line.line_number,
            f"{first.path}.administration",
            {**params, "total_mg": format_number(administered + discarded)},
        )


def fills_whole_vials(total_mg: float, sizes: tuple[float, ...]) -> bool:
    """Whether `total_mg` is the content of one or more whole vials of the given sizes (any mix of them)."""
    if total_mg < min(sizes) - _MG_TOLERANCE:
        return False
    size, rest = sizes[0], sizes[1:]
    if not rest:
        vials = round(total_mg / size)
        return vials >= 1 and abs(vials * size - total_mg) <= _MG_TOLERANCE
    # A few sizes and a few dozen vials at most: try each count of the first size, the rest with the others.
    count = 0
    while count * size <= total_mg + _MG_TOLERANCE:
        remainder = total_mg - count * size
        if abs(remainder) <= _MG_TOLERANCE and count >= 1:
            return True
        if remainder > _MG_TOLERANCE and fills_whole_vials(remainder, rest):
            return True
        count += 1
    return False
