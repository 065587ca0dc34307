"""`waste` rules: JW (discarded amount, on its own line) and JZ (nothing discarded) per payer policy.

Per code and service date: D = the drug lines' `discarded_mg` (summed), U = the unit size, k = floor(D / U).
- Any payer: no line with both JW and JZ.
- A line recognised as the waste line without its JW modifier (rules.context): add JW to it.
- An institutional claim whose type of bill is outside the JW/JZ policy (inpatient, RHC, FQHC: code_sets.yaml):
  no waste rule but the contradiction above.
- Where the payer requires JW/JZ for the date: k >= 1: a JW line with k units and no JZ on the drug line;
  k = 0: JZ on the drug line and no JW line (the rounded-up units already cover the waste).
- Elsewhere: a JW line for a payer that does not accept JW is an error; a JW line must bill k units; k >= 1
  without a JW line is a warning (discarded drug not billed).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

from rules.arithmetic import format_number, whole_units_in
from rules.context import ClaimContext, DrugLine, Hit, ProfileRuleId, RuleResult, Skip
from rules.policy_tables import Profile

JW_AND_JZ_SAME_LINE = ProfileRuleId("{code}.WASTE.JW_AND_JZ_SAME_LINE")
JW_LINE_MISSING = ProfileRuleId("{code}.WASTE.JW_LINE_MISSING")
JZ_WITH_DISCARD = ProfileRuleId("{code}.WASTE.JZ_WITH_DISCARD")
JZ_MISSING = ProfileRuleId("{code}.WASTE.JZ_MISSING")
JW_LINE_NOT_ALLOWED = ProfileRuleId("{code}.WASTE.JW_LINE_NOT_ALLOWED")
JW_NOT_ACCEPTED = ProfileRuleId("{code}.WASTE.JW_NOT_ACCEPTED")
JW_UNITS_MISMATCH = ProfileRuleId("{code}.WASTE.JW_UNITS_MISMATCH")
DISCARD_NOT_BILLED = ProfileRuleId("{code}.WASTE.DISCARD_NOT_BILLED")
JW_MODIFIER_MISSING = ProfileRuleId("{code}.WASTE.JW_MODIFIER_MISSING")
RULES = tuple(
    rule.template
    for rule in (
        JW_AND_JZ_SAME_LINE,
        JW_LINE_MISSING,
        JZ_WITH_DISCARD,
        JZ_MISSING,
        JW_LINE_NOT_ALLOWED,
        JW_NOT_ACCEPTED,
        JW_UNITS_MISMATCH,
        DISCARD_NOT_BILLED,
        JW_MODIFIER_MISSING,
    )
)
# The rules a missing discarded_mg leaves unevaluated: where the payer requires JW/JZ for the date, and elsewhere
# for a payer that accepts JW (for one that does not, no waste rule depends on the amount).
_NEED_DISCARD_WHERE_REQUIRED = (JW_LINE_MISSING, JZ_WITH_DISCARD, JZ_MISSING, JW_LINE_NOT_ALLOWED, JW_UNITS_MISMATCH)
_NEED_DISCARD_ELSEWHERE = (JW_UNITS_MISMATCH, DISCARD_NOT_BILLED)


def check(ctx: ClaimContext) -> Iterator[RuleResult]:
    for (_, service_date), (doses, wastes) in ctx.drug_groups.items():
        yield from _group(ctx, service_date, doses, wastes)


def _discarded_mg(doses: list[DrugLine], wastes: list[DrugLine]) -> float | None:
    """D for the group: the drug lines' discarded_mg, or the JW lines' own record when there is no drug line."""
    recorded = doses or wastes
    total = 0.0
    for drug_line in recorded:
        administration = drug_line.line.administration
        if administration is None or administration.discarded_mg is None:
            return None
        total += administration.discarded_mg
    return total


def _group(
    ctx: ClaimContext, service_date: dt.date, doses: list[DrugLine], wastes: list[DrugLine]
) -> Iterator[RuleResult]:
    profile = (doses or wastes)[0].profile
    code = profile.code
    code_sets = ctx.policy.code_sets
    jw, jz = code_sets.waste_modifier, code_sets.no_waste_modifier
    payer = ctx.payer
    required = payer.jw_jz_required_on(service_date)
    # JW and JZ contradict each other on any payer (issue 13 B4), not only where JW/JZ is required.
    for group in (doses, wastes):
        for drug_line in group:
            modifiers = drug_line.line.modifiers
            if jz in modifiers and jw in modifiers:
                yield Hit(
                    JW_AND_JZ_SAME_LINE.for_code(code),
                    drug_line.line.line_number,
                    f"{drug_line.path}.modifiers",
                    {"code": code},
                )
    if _outside_jw_jz_policy(ctx):
        return
    for drug_line in wastes:
        if drug_line.jw_missing:  # recognised by its units (rules.context._recognise_unmarked_waste)
            yield _jw_modifier_missing(ctx, profile, service_date, doses, drug_line)
    if not required and wastes and not payer.rules.accepts_jw:
        yield from _not_accepted(ctx, code, wastes)
        return

    discarded = _discarded_mg(doses, wastes)
    if discarded is None:
        yield from _not_evaluated(ctx, code, required, doses or wastes)
        return

    k = whole_units_in(discarded, profile.unit_mg)
    if required:
        yield from _required(ctx, profile, service_date, discarded, k=k, doses=doses, wastes=wastes)
    elif wastes:
        if _units_of(wastes) != k:
            yield _units_mismatch(ctx, profile, service_date, discarded, k=k, wastes=wastes)
    elif k >= 1 and doses and payer.rules.accepts_jw:
        first = doses[0]
        yield Hit(
            DISCARD_NOT_BILLED.for_code(code),
            first.line.line_number,
            f"{first.path}.administration.discarded_mg",
            _params(ctx, profile, service_date, discarded, k),
        )


def _not_accepted(ctx: ClaimContext, code: str, wastes: list[DrugLine]) -> Iterator[RuleResult]:
    for drug_line in wastes:
        yield Hit(
            JW_NOT_ACCEPTED.for_code(code),
            drug_line.line.line_number,
            f"{drug_line.path}.modifiers",
            {"code": code, "payer": ctx.payer_label},
        )


def _not_evaluated(ctx: ClaimContext, code: str, required: bool, recorded: list[DrugLine]) -> Iterator[RuleResult]:
    missing_on = ", ".join(
        str(drug_line.line.line_number)
        for drug_line in recorded
        if drug_line.line.administration is None or drug_line.line.administration.discarded_mg is None
    )
    reason = f"administration.discarded_mg is missing (line {missing_on}), so the waste in units is unknown"
    rules: tuple[ProfileRuleId, ...] = _NEED_DISCARD_WHERE_REQUIRED
    if not required:
        rules = _NEED_DISCARD_ELSEWHERE if ctx.payer.rules.accepts_jw else ()
    for rule in rules:
        yield Skip(rule.for_code(code), reason)


def _params(ctx: ClaimContext, profile: Profile, service_date: dt.date, discarded: float, k: int) -> dict[str, object]:
    return {
        "code": profile.code,
        "discarded_mg": format_number(discarded),
        "k": k,
        "unit_mg": format_number(profile.unit_mg),
        "service_date": service_date.isoformat(),
        "payer": ctx.payer_label,
    }


def _required(
    ctx: ClaimContext,
    profile: Profile,
    service_date: dt.date,
    discarded: float,
    *,
    k: int,
    doses: list[DrugLine],
    wastes: list[DrugLine],
) -> Iterator[RuleResult]:
    code = profile.code
    jz = ctx.policy.code_sets.no_waste_modifier
    if k >= 1:
        if wastes:
            if _units_of(wastes) != k:
                yield _units_mismatch(ctx, profile, service_date, discarded, k=k, wastes=wastes)
        elif doses:
            first = doses[0]
            yield Hit(
                JW_LINE_MISSING.for_code(code),
                first.line.line_number,
                f"{first.path}.modifiers",
                _params(ctx, profile, service_date, discarded, k),
            )
        for drug_line in doses:
            if jz in drug_line.line.modifiers:
                yield Hit(
                    JZ_WITH_DISCARD.for_code(code),
                    drug_line.line.line_number,
                    f"{drug_line.path}.modifiers",
                    _params(ctx, profile, service_date, discarded, k),
                )
        return
    required_from = ctx.payer.rules.jw_jz_required_from
    for drug_line in doses:
        if jz not in drug_line.line.modifiers:
            yield Hit(
                JZ_MISSING.for_code(code),
                drug_line.line.line_number,
                f"{drug_line.path}.modifiers",
                {
                    **_params(ctx, profile, service_date, discarded, k),
                    "required_from": required_from.isoformat() if required_from else "",
                },
            )
    for drug_line in wastes:
        yield Hit(
            JW_LINE_NOT_ALLOWED.for_code(code),
            drug_line.line.line_number,
            f"{drug_line.path}.modifiers",
            _params(ctx, profile, service_date, discarded, k),
        )


def _units_of(wastes: list[DrugLine]) -> float:
    return sum(drug_line.line.units for drug_line in wastes)


def _units_mismatch(
    ctx: ClaimContext, profile: Profile, service_date: dt.date, discarded: float, *, k: int, wastes: list[DrugLine]
) -> Hit:
    first = wastes[0]
    return Hit(
        JW_UNITS_MISMATCH.for_code(profile.code),
        first.line.line_number,
        f"{first.path}.units",
        {**_params(ctx, profile, service_date, discarded, k), "units": format_number(_units_of(wastes))},
    )


def _jw_modifier_missing(
    ctx: ClaimContext, profile: Profile, service_date: dt.date, doses: list[DrugLine], waste: DrugLine
) -> Hit:
    discarded = _discarded_mg(doses, []) or 0.0
    return Hit(
        JW_MODIFIER_MISSING.for_code(profile.code),
        waste.line.line_number,
        f"{waste.path}.modifiers",
        {
            **_params(ctx, profile, service_date, discarded, whole_units_in(discarded, profile.unit_mg)),
            "line": waste.line.line_number,
        },
    )


def _outside_jw_jz_policy(ctx: ClaimContext) -> bool:
    """Issue 13 B3: the type of bill's facility type and classification (3 digits, or 4 with a leading 0)."""
    type_of_bill = ctx.claim.type_of_bill
    if type_of_bill is None:
        return False
    digits = type_of_bill[1:] if len(type_of_bill) == 4 else type_of_bill
    return digits[:2] in ctx.policy.code_sets.jw_jz_out_of_scope_bill_types
