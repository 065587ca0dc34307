"""`ndc` rules: an NDC on every drug and waste line where the payer requires it; NDCs in 11-digit form; and
(issue 13 B7) on drug lines, an NDC listed for the billed code and an NDC quantity that matches the billed units.

- NOT_LISTED_FOR_CODE: a well-formed NDC that codes.yaml lists for no code, on a line of a code whose NDCs it
  lists. An NDC listed for another code is the crosswalk's finding (CROSSWALK.DRUG_CODE_MISMATCH.NDC), a malformed
  one INVALID_FORMAT's; a code with no NDCs listed draws no finding.
- QUANTITY_MISMATCH: an NDC quantity in mL, at the profile's concentration, is a number of mg, hence of billing
  units (a dose line: rounded up, as the units rules round the dose; a JW line: whole units, as the waste rules
  count the discarded units); they must be the line's units. When the administration record gives the same units
  as the NDC quantity, the billed units are what is wrong and the units and waste rules already say so: no finding
  here. Only mL converts: the sources give no conversion for UN, GR, F2 or ME (not evaluated); a profile without a
  concentration has no such rule (rules.yaml `requires: concentration`).
"""

from __future__ import annotations

from collections.abc import Iterator

from rules.arithmetic import format_number, units_for, whole_units_in
from rules.context import ClaimContext, DrugLine, Hit, ProfileRuleId, RuleResult, Skip
from rules.policy_tables import normalise_ndc
from schemas.claim import NdcUnit

MISSING = ProfileRuleId("{code}.NDC.MISSING")
INVALID_FORMAT = "CLAIM.NDC.INVALID_FORMAT"
# issue 13 B7
NOT_LISTED_FOR_CODE = ProfileRuleId("{code}.NDC.NOT_LISTED_FOR_CODE")
QUANTITY_MISMATCH = ProfileRuleId("{code}.NDC.QUANTITY_MISMATCH")
RULES = (MISSING.template, INVALID_FORMAT, NOT_LISTED_FOR_CODE.template, QUANTITY_MISMATCH.template)


def check(ctx: ClaimContext) -> Iterator[RuleResult]:
    if ctx.payer.rules.ndc_required:
        for drug_line in ctx.drug_lines:
            if drug_line.line.ndc is None:
                code = drug_line.profile.code
                yield Hit(
                    MISSING.for_code(code),
                    drug_line.line.line_number,
                    f"{drug_line.path}.ndc",
                    {"code": code, "payer": ctx.payer_label},
                )
    known = ctx.policy.code_by_ndc
    for index, line in enumerate(ctx.claim.lines):
        ndc = line.ndc
        # NDCs in the similar-codes table are well-formed: no need to parse those.
        if ndc is not None and ndc.code not in known and normalise_ndc(ndc.code) is None:
            yield Hit(INVALID_FORMAT, line.line_number, f"lines[{index}].ndc.code", {"ndc": ndc.code})
    # issue 13 B7
    for drug_line in ctx.drug_lines:
        ndc = drug_line.line.ndc
        if ndc is None:
            continue
        profile = drug_line.profile
        concentration = profile.concentration_mg_per_ml
        # The usual line: the code's own NDC and, where checked, a quantity in mL that gives its units.
        if known.get(ndc.code) == profile.code and (
            concentration is None
            or (ndc.unit is NdcUnit.ML and _ndc_units(drug_line, ndc.quantity * concentration) == drug_line.line.units)
        ):
            continue
        yield from _listed_and_quantity(ctx, drug_line)


def _listed_and_quantity(ctx: ClaimContext, drug_line: DrugLine) -> Iterator[RuleResult]:
    line = drug_line.line
    ndc = line.ndc
    if ndc is None:
        return
    profile = drug_line.profile
    code = profile.code
    listed_for = ctx.policy.code_by_ndc.get(ndc.code)
    concentration = profile.concentration_mg_per_ml
    # No quantity rule exists for a profile without a concentration: nothing to skip either.
    quantity_rule = None if concentration is None else QUANTITY_MISMATCH.for_code(code)
    where = f"line {line.line_number}"
    reason = None
    if listed_for is None:
        if normalise_ndc(ndc.code) is None:
            reason = f"{where}: the NDC {ndc.code} is malformed"
        elif profile.ndcs:
            yield Hit(
                NOT_LISTED_FOR_CODE.for_code(code),
                line.line_number,
                f"{drug_line.path}.ndc.code",
                {"code": code, "ndc": ndc.code, "listed_ndcs": ", ".join(profile.ndcs)},
            )
            reason = f"{where}: the NDC {ndc.code} is not one of {code}'s, so its concentration is unknown"
    elif listed_for != code:
        reason = f"{where}: the NDC {ndc.code} is {listed_for}'s, not {code}'s"
    if quantity_rule is None or concentration is None:
        return
    if reason is not None:
        yield Skip(quantity_rule, reason)
        return
    if ndc.unit is not NdcUnit.ML:
        yield Skip(quantity_rule, f"{where}: an NDC quantity in {ndc.unit.value} is not converted to mg (only mL)")
        return
    mg = ndc.quantity * concentration
    ndc_units = _ndc_units(drug_line, mg)
    if ndc_units == line.units:
        return
    documented = _documented_mg(ctx, drug_line)
    if documented is None or _ndc_units(drug_line, documented) != ndc_units:
        yield Hit(
            quantity_rule,
            line.line_number,
            f"{drug_line.path}.ndc.quantity",
            {
                "code": code,
                "ndc": ndc.code,
                "quantity": format_number(ndc.quantity),
                "mg": format_number(mg),
                "concentration": format_number(concentration),
                "ndc_units": ndc_units,
                "units": format_number(line.units),
                "unit_mg": format_number(profile.unit_mg),
            },
        )


def _ndc_units(drug_line: DrugLine, mg: float) -> int:
    """`mg` in billing units of the line's code: rounded up on a dose line, whole units on a waste line."""
    unit_mg = drug_line.profile.unit_mg
    return whole_units_in(mg, unit_mg) if drug_line.is_waste else units_for(mg, unit_mg)


def _documented_mg(ctx: ClaimContext, drug_line: DrugLine) -> float | None:
    """The amount the administration record gives for the line: administered mg on a dose line; on the only waste
    line of its code and date, the discarded mg of that code and date's dose lines. None where it gives none."""
    line = drug_line.line
    if not drug_line.is_waste:
        return None if line.administration is None else line.administration.administered_mg
    key = (drug_line.profile.code, line.service_date)
    if sum(1 for w in ctx.waste_lines if (w.profile.code, w.line.service_date) == key) != 1:
        return None
    discarded = 0.0
    for dose in ctx.doses:
        if (dose.profile.code, dose.line.service_date) == key:
            administration = dose.line.administration
            if administration is None or administration.discarded_mg is None:
                return None
            discarded += administration.discarded_mg
    return discarded
