"""`modifier_25` rules: 25 belongs on the E/M code only, and on an E/M billed the day of drug administration."""

from __future__ import annotations

from collections.abc import Iterator

from rules.context import ClaimContext, Hit, RuleResult

NOT_ALLOWED = "CLAIM.MODIFIER_25.NOT_ALLOWED_ON_LINE"
MISSING = "CLAIM.MODIFIER_25.MISSING_ON_EM"
SUPPORT = "CLAIM.MODIFIER_25.SUPPORT_REQUIRED"
RULES = (NOT_ALLOWED, MISSING, SUPPORT)


def check(ctx: ClaimContext) -> Iterator[RuleResult]:
    code_sets = ctx.policy.code_sets
    profiles = ctx.policy.profiles
    administration_codes = code_sets.drug_administration
    em_codes = code_sets.evaluation_and_management
    modifier = code_sets.separate_visit_modifier
    for index, line in enumerate(ctx.claim.lines):
        code = line.procedure_code
        has_modifier = modifier in line.modifiers
        # issue 13 B10: a J-code is a drug code even without a profile.
        is_drug = code in profiles or code.startswith(code_sets.drug_code_prefixes)
        if has_modifier and (is_drug or code in administration_codes):
            kind = "drug code" if is_drug else "drug administration code"
            yield Hit(
                NOT_ALLOWED, line.line_number, f"lines[{index}].modifiers", {"procedure_code": code, "kind": kind}
            )
        if code not in em_codes:
            continue
        if has_modifier:
            yield Hit(SUPPORT, line.line_number, f"lines[{index}].modifiers", {"procedure_code": code})
            continue
        administered = ctx.codes_on[line.service_date] & administration_codes
        if administered:
            yield Hit(
                MISSING,
                line.line_number,
                f"lines[{index}].modifiers",
                {
                    "procedure_code": code,
                    "service_date": line.service_date.isoformat(),
                    "administration_codes": ", ".join(sorted(administered)),
                },
            )
