"""`administration` rules (warnings): how the infusion of a drug line is billed (96413/96415/96417)."""

from __future__ import annotations

from collections.abc import Iterator

from rules.context import ClaimContext, Hit, ProfileRuleId, RuleResult, Skip

NO_CHEMO_ADMIN_CODE = ProfileRuleId("{code}.ADMINISTRATION.NO_CHEMO_ADMIN_CODE")
LONG_INFUSION_WITHOUT_96415 = ProfileRuleId("{code}.ADMINISTRATION.LONG_INFUSION_WITHOUT_96415")
NON_CHEMO_INFUSION_CODE = ProfileRuleId("{code}.ADMINISTRATION.NON_CHEMO_INFUSION_CODE")
RULES = (NO_CHEMO_ADMIN_CODE.template, LONG_INFUSION_WITHOUT_96415.template, NON_CHEMO_INFUSION_CODE.template)


def check(ctx: ClaimContext) -> Iterator[RuleResult]:
    code_sets = ctx.policy.code_sets
    codes_on = ctx.codes_on
    place_of_service = ctx.claim.place_of_service
    in_office = place_of_service is not None and place_of_service in code_sets.office_places_of_service
    # issue 13 B6: a push (96409) is an administration code too; whether the times make it one is
    # CLAIM.ADMINISTRATION.INFUSION_BILLED_AS_PUSH's to say.
    administration_codes = code_sets.chemotherapy_infusion | {code_sets.chemotherapy_push}
    additional_hour = code_sets.additional_hour_infusion
    long_minutes = code_sets.long_infusion_minutes
    for drug_line in ctx.doses:
        code = drug_line.profile.code
        line = drug_line.line
        billed_that_day = codes_on[line.service_date]
        if in_office and billed_that_day.isdisjoint(administration_codes):
            yield Hit(
                NO_CHEMO_ADMIN_CODE.for_code(code),
                line.line_number,
                "lines",
                {
                    "code": code,
                    "place_of_service": place_of_service,
                    "chemo_codes": code_sets.chemotherapy_infusion_text,
                    "service_date": line.service_date.isoformat(),
                },
            )
        administration = line.administration
        started = None if administration is None else administration.started_at
        ended = None if administration is None else administration.ended_at
        if started is None or ended is None or ended < started:
            reason = (
                "the infusion start or end time is missing"
                if ended is None or started is None
                else ("the infusion ends before it starts")
            )
            yield Skip(LONG_INFUSION_WITHOUT_96415.for_code(code), f"line {line.line_number}: {reason}")
            continue
        minutes = (ended - started).total_seconds() / 60
        if minutes > long_minutes and additional_hour not in billed_that_day:
            yield Hit(
                LONG_INFUSION_WITHOUT_96415.for_code(code),
                line.line_number,
                f"{drug_line.path}.administration.ended_at",
                {
                    "code": code,
                    "minutes": round(minutes),
                    "limit_minutes": long_minutes,
                    "additional_hour_code": additional_hour,
                    "service_date": line.service_date.isoformat(),
                },
            )
    non_chemotherapy = code_sets.non_chemotherapy_infusion
    for codes in codes_on.values():
        if not codes.isdisjoint(non_chemotherapy):
            yield from _non_chemotherapy_lines(ctx)
            return


def _non_chemotherapy_lines(ctx: ClaimContext) -> Iterator[RuleResult]:
    code_sets = ctx.policy.code_sets
    non_chemotherapy = code_sets.non_chemotherapy_infusion
    for index, line in enumerate(ctx.claim.lines):
        if line.procedure_code not in non_chemotherapy:
            continue
        drugs = sorted({d.profile.code for d in ctx.doses if d.line.service_date == line.service_date})
        for code in drugs:
            yield Hit(
                NON_CHEMO_INFUSION_CODE.for_code(code),
                line.line_number,
                f"lines[{index}].procedure_code",
                {
                    "code": code,
                    "procedure_code": line.procedure_code,
                    "chemo_codes": code_sets.chemotherapy_infusion_text,
                },
            )
