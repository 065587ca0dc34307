"""`modifier_25` rules: 25 belongs on the E/M code only, and on an E/M billed the day of drug administration.

One `bundling` rule lives here too, because it replaces the modifier 25 advice for the same line: where the payer
bundles 99211 into a drug administration (Medicare), a 99211 on that day is not paid with or without 25, so the
claim gets that error instead of "add modifier 25" or "the record must support the visit" (issue 13 B1).
"""

from __future__ import annotations

from collections.abc import Iterator

from rules.context import ClaimContext, Hit, RuleResult

NOT_ALLOWED = "CLAIM.MODIFIER_25.NOT_ALLOWED_ON_LINE"
MISSING = "CLAIM.MODIFIER_25.MISSING_ON_EM"
SUPPORT = "CLAIM.MODIFIER_25.SUPPORT_REQUIRED"
EM_BUNDLED = "CLAIM.BUNDLING.EM_99211_ON_DRUG_ADMINISTRATION_DAY"
RULES = (NOT_ALLOWED, MISSING, SUPPORT, EM_BUNDLED)


def check(ctx: ClaimContext) -> Iterator[RuleResult]:
    code_sets = ctx.policy.code_sets
    profiles = ctx.policy.profiles
    administration_codes = code_sets.drug_administration
    em_codes = code_sets.evaluation_and_management
    bundles = ctx.payer.rules.bundles_99211_with_drug_administration
    bundled_em = code_sets.em_codes_bundled_with_drug_administration if bundles else frozenset()
    modifier = code_sets.separate_visit_modifier
    for index, line in enumerate(ctx.claim.lines):
        code = line.procedure_code
        has_modifier = modifier in line.modifiers
        if has_modifier and code not in em_codes:
            # issue 13 B10: a J-code is a drug code even without a profile.
            is_drug = code in profiles or code.startswith(code_sets.drug_code_prefixes)
            if is_drug or code in administration_codes:
                kind = "drug code" if is_drug else "drug administration code"
                yield Hit(
                    NOT_ALLOWED, line.line_number, f"lines[{index}].modifiers", {"procedure_code": code, "kind": kind}
                )
            continue
        if code not in em_codes:
            continue
        administered = ctx.codes_on[line.service_date] & administration_codes
        if administered and code in bundled_em:
            yield Hit(
                EM_BUNDLED,
                line.line_number,
                f"lines[{index}].procedure_code",
                {
                    "procedure_code": code,
                    "service_date": line.service_date.isoformat(),
                    "administration_codes": ", ".join(sorted(administered)),
                    "payer": ctx.payer_label,
                },
            )
        elif has_modifier:
            yield Hit(SUPPORT, line.line_number, f"lines[{index}].modifiers", {"procedure_code": code})
        elif administered:
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
