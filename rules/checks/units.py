"""`units` rules on drug lines (waste lines excluded): whole units, units = ceil(administered / unit size), dose.

Units are checked per line. The dose is judged per code and service date, on the sum of the lines' administered
mg: one dose may be billed on two lines (two NDCs, issue 13 B2); the finding goes on the first of them.

A dose needs `administration.administered_mg` (on every line of that date); a weight-based dose also needs
`patient.weight_kg`. Without them the rule reports itself as not evaluated.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

from rules.arithmetic import format_number, units_for
from rules.context import ClaimContext, DrugLine, Hit, ProfileRuleId, RuleResult, Skip
from rules.policy_tables import Policy

NOT_WHOLE = ProfileRuleId("{code}.UNITS.NOT_WHOLE")
ABOVE_ADMINISTERED = ProfileRuleId("{code}.UNITS.ABOVE_ADMINISTERED")
BELOW_ADMINISTERED = ProfileRuleId("{code}.UNITS.BELOW_ADMINISTERED")
DOSE_ABOVE_LABEL = ProfileRuleId("{code}.UNITS.DOSE_ABOVE_LABEL")
DOSE_BELOW_LABEL = ProfileRuleId("{code}.UNITS.DOSE_BELOW_LABEL")
RULES = tuple(
    rule.template for rule in (NOT_WHOLE, ABOVE_ADMINISTERED, BELOW_ADMINISTERED, DOSE_ABOVE_LABEL, DOSE_BELOW_LABEL)
)

# Dose comparisons are in mg; below this difference two doses are the same (float noise of mg/kg x kg).
_MG_EPSILON = 1e-6


def check(ctx: ClaimContext) -> Iterator[RuleResult]:
    weight_kg = ctx.claim.patient.weight_kg
    doses = ctx.doses
    # Doses per code and service date, first line first; a None administered marks a date that cannot be judged.
    by_date: dict[tuple[str, dt.date], list[tuple[DrugLine, float | None]]] | None = None
    if len(doses) > 1:
        by_date = {}
    for drug_line in doses:
        profile = drug_line.profile
        code = profile.code
        line = drug_line.line
        units = line.units
        whole = units.is_integer()
        if not whole:
            yield Hit(
                NOT_WHOLE.for_code(code),
                line.line_number,
                f"{drug_line.path}.units",
                {"code": code, "units": format_number(units), "unit_mg": format_number(profile.unit_mg)},
            )
        administration = line.administration
        administered = administration.administered_mg if administration is not None else None
        if by_date is not None:
            by_date.setdefault((code, line.service_date), []).append((drug_line, administered))
        if administered is None:
            reason = f"line {line.line_number}: administration.administered_mg is missing"
            yield Skip(ABOVE_ADMINISTERED.for_code(code), reason)
            yield Skip(BELOW_ADMINISTERED.for_code(code), reason)
            yield Skip(DOSE_ABOVE_LABEL.for_code(code), reason)
            if profile.below_factor is not None:
                yield Skip(DOSE_BELOW_LABEL.for_code(code), reason)
            continue
        # The sub-checks are entered only when something is off: this runs for every drug line of every claim.
        if whole and units != units_for(administered, profile.unit_mg):
            yield from _units_match(ctx.policy, drug_line, administered)
        if by_date is None:
            yield from _dose_if_off(drug_line, administered, weight_kg, "")
    if by_date is not None:
        yield from _summed_doses(by_date, weight_kg)


def _summed_doses(
    by_date: dict[tuple[str, dt.date], list[tuple[DrugLine, float | None]]], weight_kg: float | None
) -> Iterator[RuleResult]:
    for (_, day), parts in by_date.items():
        amounts = [administered for _, administered in parts]
        first = parts[0][0]
        if len(parts) == 1:
            if amounts[0] is not None:
                yield from _dose_if_off(first, amounts[0], weight_kg, "")
            continue
        known = [amount for amount in amounts if amount is not None]
        if len(known) < len(amounts):
            continue  # the line without administered_mg is already reported as not evaluated
        numbers = [str(drug_line.line.line_number) for drug_line, _ in parts]
        note = f" (lines {', '.join(numbers[:-1])} and {numbers[-1]} of {day.isoformat()} summed)"
        yield from _dose_if_off(first, sum(known), weight_kg, note)


def _dose_if_off(drug_line: DrugLine, administered: float, weight_kg: float | None, parts: str) -> Iterator[RuleResult]:
    profile = drug_line.profile
    max_mg = profile.max_mg
    if max_mg is None or administered > max_mg * profile.above_factor + _MG_EPSILON:
        yield from _dose(drug_line, administered, weight_kg, parts)


def _units_match(policy: Policy, drug_line: DrugLine, administered: float) -> Iterator[RuleResult]:
    profile = drug_line.profile
    units = drug_line.line.units
    expected = units_for(administered, profile.unit_mg)
    if units == expected:
        return
    mixup_note = ""
    for unit_mg, codes in policy.unit_sizes:
        if unit_mg != profile.unit_mg and units == units_for(administered, unit_mg):
            mixup_note = (
                f" {format_number(units)} units is the count at {format_number(unit_mg)} mg per unit ({codes}): "
                "a likely unit-size mix-up."
            )
            break
    rule = ABOVE_ADMINISTERED if units > expected else BELOW_ADMINISTERED
    yield Hit(
        rule.for_code(profile.code),
        drug_line.line.line_number,
        f"{drug_line.path}.units",
        {
            "code": profile.code,
            "units": format_number(units),
            "administered_mg": format_number(administered),
            "unit_mg": format_number(profile.unit_mg),
            "expected": expected,
            "mixup_note": mixup_note,
        },
    )


def _dose(drug_line: DrugLine, administered: float, weight_kg: float | None, parts: str) -> Iterator[RuleResult]:
    profile = drug_line.profile
    code = profile.code
    line = drug_line.line
    field = f"{drug_line.path}.administration.administered_mg"
    if profile.max_mg is not None:
        limit = profile.max_mg * profile.above_factor
        if administered > limit + _MG_EPSILON:
            yield Hit(
                DOSE_ABOVE_LABEL.for_code(code),
                line.line_number,
                field,
                {
                    "code": code,
                    "parts": parts,
                    "administered_mg": format_number(administered),
                    "limit": f"{profile.dose_limit_text} ({format_number(limit)} mg)",
                },
            )
        return
    mg_per_kg = profile.mg_per_kg
    if mg_per_kg is None:
        return
    if weight_kg is None:
        reason = (
            f"line {line.line_number}: patient.weight_kg is missing, "
            f"so the {format_number(mg_per_kg)} mg/kg dose is unknown"
        )
        yield Skip(DOSE_ABOVE_LABEL.for_code(code), reason)
        if profile.below_factor is not None:
            yield Skip(DOSE_BELOW_LABEL.for_code(code), reason)
        return
    label_mg = mg_per_kg * weight_kg
    above = label_mg * profile.above_factor
    if administered > above + _MG_EPSILON:
        tolerance = format_number(round((profile.above_factor - 1) * 100, 6))
        yield Hit(
            DOSE_ABOVE_LABEL.for_code(code),
            line.line_number,
            field,
            {
                "code": code,
                "parts": parts,
                "administered_mg": format_number(administered),
                "limit": (
                    f"{format_number(mg_per_kg)} mg/kg x {format_number(weight_kg)} kg = {format_number(label_mg)} mg,"
                    f" at most {format_number(above)} mg with the {tolerance}% tolerance"
                ),
            },
        )
    elif profile.below_factor is not None and administered < label_mg * profile.below_factor - _MG_EPSILON:
        yield Hit(
            DOSE_BELOW_LABEL.for_code(code),
            line.line_number,
            field,
            {
                "code": code,
                "parts": parts,
                "administered_mg": format_number(administered),
                "below_pct": format_number(profile.below_tolerance_pct or 0),
                "label_mg": format_number(label_mg),
                "mg_per_kg": format_number(mg_per_kg),
                "weight_kg": format_number(weight_kg),
            },
        )
