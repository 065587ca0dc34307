"""`diagnosis` rules: valid, billable ICD-10-CM codes; pointers in range; drug lines pointed at an indication."""

from __future__ import annotations

from collections.abc import Iterator

from rules.context import ClaimContext, DrugLine, Hit, ProfileRuleId, RuleResult

UNKNOWN = "CLAIM.DIAGNOSIS.UNKNOWN_CODE"
NOT_BILLABLE = "CLAIM.DIAGNOSIS.NOT_BILLABLE"
POINTER = "CLAIM.DIAGNOSIS.POINTER_OUT_OF_RANGE"
NOT_INDICATED = ProfileRuleId("{code}.DIAGNOSIS.NOT_INDICATED")
RULES = (UNKNOWN, NOT_BILLABLE, POINTER, NOT_INDICATED.template)


def check(ctx: ClaimContext) -> Iterator[RuleResult]:
    icd = ctx.policy.icd10cm
    billable = icd.billable
    diagnoses = ctx.claim.diagnoses
    count = len(diagnoses)
    for position, diagnosis in enumerate(diagnoses):
        if diagnosis not in billable:
            yield Hit(
                NOT_BILLABLE if diagnosis in icd.valid else UNKNOWN,
                None,
                f"diagnoses[{position}]",
                {"position": position + 1, "diagnosis": diagnosis},
            )
    for index, line in enumerate(ctx.claim.lines):
        pointers = line.diagnosis_pointers
        if pointers is not None and max(pointers) > count:
            for slot, pointer in enumerate(pointers):
                if pointer > count:
                    yield Hit(
                        POINTER,
                        line.line_number,
                        f"lines[{index}].diagnosis_pointers[{slot}]",
                        {"pointer": pointer, "count": count},
                    )
    yield from _indications(ctx)


def _indications(ctx: ClaimContext) -> Iterator[RuleResult]:
    diagnoses = ctx.claim.diagnoses
    count = len(diagnoses)
    for drug_line in ctx.drug_lines:
        pointers = drug_line.line.diagnosis_pointers
        prefixes = drug_line.profile.indication_prefixes
        exclusions = drug_line.profile.indication_exclusions
        if pointers is None:
            for diagnosis in diagnoses:
                if diagnosis.startswith(prefixes) and not (exclusions and diagnosis.startswith(exclusions)):
                    break
            else:
                yield _not_indicated(drug_line, diagnoses)
            continue
        for pointer in pointers:
            if pointer > count:
                continue
            diagnosis = diagnoses[pointer - 1]
            if diagnosis.startswith(prefixes) and not (exclusions and diagnosis.startswith(exclusions)):
                break
        else:
            yield _not_indicated(drug_line, [diagnoses[p - 1] for p in pointers if p <= count])


def _not_indicated(drug_line: DrugLine, pointed: list[str]) -> Hit:
    profile = drug_line.profile
    withdrawn_notes = [
        f" {diagnosis} falls under a withdrawn indication: {description}."
        for diagnosis in pointed
        for prefixes, description in profile.withdrawn
        if diagnosis.startswith(prefixes)
    ]
    return Hit(
        NOT_INDICATED.for_code(profile.code),
        drug_line.line.line_number,
        "diagnoses" if drug_line.line.diagnosis_pointers is None else f"{drug_line.path}.diagnosis_pointers",
        {
            "code": profile.code,
            "pointed": ", ".join(pointed) or "none",
            "indications": profile.indications_text,
            "withdrawn_note": "".join(withdrawn_notes),
        },
    )
