"""`ndc` rules: an NDC on every drug and waste line where the payer requires it; NDCs in 11-digit form."""

from __future__ import annotations

from collections.abc import Iterator

from rules.context import ClaimContext, Hit, ProfileRuleId, RuleResult
from rules.policy_tables import normalise_ndc

MISSING = ProfileRuleId("{code}.NDC.MISSING")
INVALID_FORMAT = "CLAIM.NDC.INVALID_FORMAT"
RULES = (MISSING.template, INVALID_FORMAT)


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
