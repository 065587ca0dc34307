"""`documentation` rules on drug lines (waste lines excluded): the administration record must be complete."""

from __future__ import annotations

from collections.abc import Iterator

from rules.context import ClaimContext, DrugLine, Hit, RuleResult

RULES = (
    "{code}.DOCUMENTATION.ADMINISTRATION_MISSING",
    "{code}.DOCUMENTATION.DOSE_MG_MISSING",
    "{code}.DOCUMENTATION.ADMINISTERED_MG_MISSING",
    "{code}.DOCUMENTATION.DISCARDED_MG_MISSING",
    "{code}.DOCUMENTATION.STARTED_AT_MISSING",
    "{code}.DOCUMENTATION.END_BEFORE_START",
    "{code}.DOCUMENTATION.ENDED_AT_MISSING",
    "{code}.DOCUMENTATION.PRE_INFUSION_ASSESSMENT_NOT_DOCUMENTED",
    "{code}.DOCUMENTATION.RESPONSE_NOT_DOCUMENTED",
)


def _hit(drug_line: DrugLine, condition: str, field: str, **extra: object) -> Hit:
    code = drug_line.profile.code
    line = drug_line.line
    return Hit(
        f"{code}.DOCUMENTATION.{condition}",
        line.line_number,
        f"{drug_line.path}.{field}",
        {"code": code, "service_date": line.service_date.isoformat(), **extra},
    )


def check(ctx: ClaimContext) -> Iterator[RuleResult]:
    for drug_line in ctx.doses:
        administration = drug_line.line.administration
        if administration is None:
            yield _hit(drug_line, "ADMINISTRATION_MISSING", "administration")
            continue
        if administration.dose_mg is None:
            yield _hit(drug_line, "DOSE_MG_MISSING", "administration.dose_mg")
        if administration.administered_mg is None:
            yield _hit(drug_line, "ADMINISTERED_MG_MISSING", "administration.administered_mg")
        if administration.discarded_mg is None:
            yield _hit(drug_line, "DISCARDED_MG_MISSING", "administration.discarded_mg")
        started, ended = administration.started_at, administration.ended_at
        if started is None:
            yield _hit(drug_line, "STARTED_AT_MISSING", "administration.started_at")
        if ended is None:
            yield _hit(drug_line, "ENDED_AT_MISSING", "administration.ended_at")
        elif started is not None and ended < started:
            yield _hit(
                drug_line,
                "END_BEFORE_START",
                "administration.ended_at",
                started_at=started.isoformat(),
                ended_at=ended.isoformat(),
            )
        if administration.pre_infusion_assessment is not True:
            yield _hit(drug_line, "PRE_INFUSION_ASSESSMENT_NOT_DOCUMENTED", "administration.pre_infusion_assessment")
        if administration.response_documented is not True:
            yield _hit(drug_line, "RESPONSE_NOT_DOCUMENTED", "administration.response_documented")
