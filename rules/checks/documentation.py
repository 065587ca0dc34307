"""`documentation` rules on drug lines (waste lines excluded): the administration record must be complete."""

from __future__ import annotations

from collections.abc import Iterator

from rules.context import ClaimContext, DrugLine, Hit, ProfileRuleId, RuleResult

ADMINISTRATION_MISSING = ProfileRuleId("{code}.DOCUMENTATION.ADMINISTRATION_MISSING")
DOSE_MG_MISSING = ProfileRuleId("{code}.DOCUMENTATION.DOSE_MG_MISSING")
ADMINISTERED_MG_MISSING = ProfileRuleId("{code}.DOCUMENTATION.ADMINISTERED_MG_MISSING")
DISCARDED_MG_MISSING = ProfileRuleId("{code}.DOCUMENTATION.DISCARDED_MG_MISSING")
STARTED_AT_MISSING = ProfileRuleId("{code}.DOCUMENTATION.STARTED_AT_MISSING")
END_BEFORE_START = ProfileRuleId("{code}.DOCUMENTATION.END_BEFORE_START")
ENDED_AT_MISSING = ProfileRuleId("{code}.DOCUMENTATION.ENDED_AT_MISSING")
PRE_INFUSION_ASSESSMENT_NOT_DOCUMENTED = ProfileRuleId("{code}.DOCUMENTATION.PRE_INFUSION_ASSESSMENT_NOT_DOCUMENTED")
RESPONSE_NOT_DOCUMENTED = ProfileRuleId("{code}.DOCUMENTATION.RESPONSE_NOT_DOCUMENTED")
RULES = tuple(
    rule.template
    for rule in (
        ADMINISTRATION_MISSING,
        DOSE_MG_MISSING,
        ADMINISTERED_MG_MISSING,
        DISCARDED_MG_MISSING,
        STARTED_AT_MISSING,
        END_BEFORE_START,
        ENDED_AT_MISSING,
        PRE_INFUSION_ASSESSMENT_NOT_DOCUMENTED,
        RESPONSE_NOT_DOCUMENTED,
    )
)


def _hit(drug_line: DrugLine, rule: ProfileRuleId, field: str, **extra: object) -> Hit:
    code = drug_line.profile.code
    line = drug_line.line
    return Hit(
        rule.for_code(code),
        line.line_number,
        f"{drug_line.path}.{field}",
        {"code": code, "service_date": line.service_date.isoformat(), **extra},
    )


def check(ctx: ClaimContext) -> Iterator[RuleResult]:
    for drug_line in ctx.doses:
        administration = drug_line.line.administration
        if administration is None:
            yield _hit(drug_line, ADMINISTRATION_MISSING, "administration")
            continue
        if administration.dose_mg is None:
            yield _hit(drug_line, DOSE_MG_MISSING, "administration.dose_mg")
        if administration.administered_mg is None:
            yield _hit(drug_line, ADMINISTERED_MG_MISSING, "administration.administered_mg")
        if administration.discarded_mg is None:
            yield _hit(drug_line, DISCARDED_MG_MISSING, "administration.discarded_mg")
        started, ended = administration.started_at, administration.ended_at
        if started is None:
            yield _hit(drug_line, STARTED_AT_MISSING, "administration.started_at")
        if ended is None:
            yield _hit(drug_line, ENDED_AT_MISSING, "administration.ended_at")
        elif started is not None and ended < started:
            yield _hit(
                drug_line,
                END_BEFORE_START,
                "administration.ended_at",
                started_at=started.isoformat(),
                ended_at=ended.isoformat(),
            )
        if administration.pre_infusion_assessment is not True:
            yield _hit(drug_line, PRE_INFUSION_ASSESSMENT_NOT_DOCUMENTED, "administration.pre_infusion_assessment")
        if administration.response_documented is not True:
            yield _hit(drug_line, RESPONSE_NOT_DOCUMENTED, "administration.response_documented")
