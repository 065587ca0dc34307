"""CROSSWALK rules: the drug given (by name or NDC) against the code billed, on every line of every claim.

A line is in scope when its code, `administration.drug` or NDC is in the similar-codes table (codes.yaml).
- A not-otherwise-classified code (J9999, J3590, C9399) for a drug with its own code in effect: CARC 189.
- A specific code for a drug (or NDC) that belongs to another specific code: drug/code mismatch, naming the
  right code and the converted units. All-digit (CPT) codes are skipped: administration and E/M lines carry
  no drug of their own even when the record names one.
"""

from __future__ import annotations

from collections.abc import Iterator

from rules.arithmetic import format_number, units_for
from rules.context import ClaimContext, Hit, RuleResult, Skip
from rules.policy_tables import CodeInfo, Policy, lookup_drug_code
from schemas.claim import ClaimLine

NOC = "CROSSWALK.CODE.NOC_SPECIFIC_CODE_EXISTS"
BY_NAME = "CROSSWALK.DRUG_CODE_MISMATCH.DRUG_NAME"
BY_NDC = "CROSSWALK.DRUG_CODE_MISMATCH.NDC"
RULES = (NOC, BY_NAME, BY_NDC)


def check(ctx: ClaimContext) -> Iterator[RuleResult]:
    policy = ctx.policy
    codes = policy.codes
    noc_codes = policy.noc_codes
    code_by_name = policy.code_by_drug_name
    code_by_ndc = policy.code_by_ndc
    for index, line in enumerate(ctx.claim.lines):
        code = line.procedure_code
        administration = line.administration
        drug = None if administration is None else administration.drug
        name_code = None if drug is None else lookup_drug_code(code_by_name, drug)
        ndc = line.ndc
        ndc_code = None if ndc is None else code_by_ndc.get(ndc.code)
        if name_code is None and ndc_code is None:
            if code in codes:
                if drug is None and ndc is None and policy.code_sets.waste_modifier not in line.modifiers:
                    reason = f"line {line.line_number}: no administration.drug and no NDC, so the drug given is unknown"
                    yield Skip(BY_NAME, reason)
                    yield Skip(BY_NDC, reason)
            elif code in noc_codes and drug is None and ndc is None:
                yield Skip(
                    NOC,
                    f"line {line.line_number}: {code} without administration.drug or an NDC, "
                    "so the drug cannot be matched to a specific code",
                )
            continue
        if code in noc_codes:
            yield from _noc(policy, line, index, drug=drug, name_code=name_code, ndc_code=ndc_code)
            continue
        if not code[0].isalpha():
            continue
        if name_code is not None and name_code != code:
            yield Hit(
                BY_NAME,
                line.line_number,
                f"lines[{index}].administration.drug",
                {"drug": drug, **_billed_and_right(policy, line, codes[name_code])},
            )
        if ndc_code is not None and ndc_code != code and ndc is not None:
            right = codes[ndc_code]
            yield Hit(
                BY_NDC,
                line.line_number,
                f"lines[{index}].ndc.code",
                {"ndc": ndc.code, "drug": right.drug, **_billed_and_right(policy, line, right)},
            )


def _noc(
    policy: Policy, line: ClaimLine, index: int, *, drug: str | None, name_code: str | None, ndc_code: str | None
) -> Iterator[RuleResult]:
    right = policy.codes[name_code or ndc_code or ""]
    if not right.in_effect_on(line.service_date):
        return
    yield Hit(
        NOC,
        line.line_number,
        f"lines[{index}].administration.drug" if name_code is not None else f"lines[{index}].ndc.code",
        {
            "drug": drug if name_code is not None else right.drug,
            "service_date": line.service_date.isoformat(),
            **_billed_and_right(policy, line, right),
        },
    )


def _billed_and_right(policy: Policy, line: ClaimLine, right: CodeInfo) -> dict[str, object]:
    """Names of the billed and right codes, and the dose converted to the right code's units where known."""
    code = line.procedure_code
    billed_info = policy.codes.get(code)
    if billed_info is not None:
        billed = f"{code} ({billed_info.descriptor})"
    elif code in policy.noc_codes:
        billed = f"{code} ({policy.noc_codes[code]})"
    else:
        billed = code
    administration = line.administration
    billed_unit_mg = None if code in policy.noc_codes else policy.unit_mg_by_code.get(code)
    is_waste = policy.code_sets.waste_modifier in line.modifiers
    mg: float | None = None
    if administration is not None and administration.administered_mg is not None and not is_waste:
        mg = administration.administered_mg
    elif billed_unit_mg is not None:
        mg = line.units * billed_unit_mg
    conversion = ""
    hint = ""
    if mg is not None:
        right_units = units_for(mg, right.unit_mg)
        conversion = f" {format_number(mg)} mg = {right_units} units of {right.code}"
        if billed_unit_mg is not None:
            conversion += f", not {format_number(line.units)} units of {code}"
        conversion += "."
        hint = f" ({right_units} units of {format_number(right.unit_mg)} mg for {format_number(mg)} mg)"
    return {
        "billed": billed,
        "billed_code": code,
        "right_code": right.code,
        "right_descriptor": right.descriptor,
        "conversion": conversion,
        "right_units_hint": hint,
    }
