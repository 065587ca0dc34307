"""`diagnosis` rules: valid, billable ICD-10-CM codes; pointers in range; drug lines pointed at an indication.

Codes are judged by the installed ICD-10-CM release. When a service date of the claim falls outside the dates that
release is in force for, they are still judged by it (the only one installed), and the verdict's not_evaluated
says so for the two code-set rules: a code added, deleted or extended since may be judged wrongly.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from functools import lru_cache

from rules.context import ClaimContext, DrugLine, Hit, ProfileRuleId, RuleResult, Skip
from rules.policy_tables import Icd10CmCodeSet

UNKNOWN = "CLAIM.DIAGNOSIS.UNKNOWN_CODE"
NOT_BILLABLE = "CLAIM.DIAGNOSIS.NOT_BILLABLE"
POINTER = "CLAIM.DIAGNOSIS.POINTER_OUT_OF_RANGE"
NOT_INDICATED = ProfileRuleId("{code}.DIAGNOSIS.NOT_INDICATED")
RULES = (UNKNOWN, NOT_BILLABLE, POINTER, NOT_INDICATED.template)


def check(ctx: ClaimContext) -> Iterator[RuleResult]:
    icd = ctx.policy.icd10cm
    if not (icd.in_force_on(ctx.earliest_service_date) and icd.in_force_on(ctx.latest_service_date)):
        yield from _release_not_in_force(ctx, icd)
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


def _release_not_in_force(ctx: ClaimContext, icd: Icd10CmCodeSet) -> Iterator[RuleResult]:
    reason = _release_reason(
        icd.source, icd.in_force_from, icd.in_force_to, ctx.earliest_service_date, ctx.latest_service_date
    )
    yield Skip(UNKNOWN, reason)
    yield Skip(NOT_BILLABLE, reason)


@lru_cache(maxsize=4096)
def _release_reason(
    source: str, in_force_from: dt.date | None, in_force_to: dt.date | None, earliest: dt.date, latest: dt.date
) -> str:
    # Cached: since the installed release went out of force, nearly every claim carries this entry, and claims
    # share a handful of service dates.
    dates = earliest.isoformat() if earliest == latest else f"{earliest.isoformat()} to {latest.isoformat()}"
    return (
        f"the service date ({dates}) is outside the installed ICD-10-CM release ({source}, in force "
        f"{in_force_from} to {in_force_to}): the codes were checked against it, not against the release "
        "in force on the service date"
    )


def _indications(ctx: ClaimContext) -> Iterator[RuleResult]:
    diagnoses = ctx.claim.diagnoses
    count = len(diagnoses)
    accepts_history = ctx.payer.rules.accepts_history_with_secondary_site
    for drug_line in ctx.drug_lines:
        pointers = drug_line.line.diagnosis_pointers
        profile = drug_line.profile
        pointed = diagnoses if pointers is None else [diagnoses[p - 1] for p in pointers if p <= count]
        if _indicated(pointed, profile.indication_prefixes, profile.indication_exclusions):
            continue
        # issue 13 B12: the history of the excised primary plus a secondary site (ICD-10-CM guideline I.C.2.d).
        history_pair = bool(profile.history_indications) and _history_pair(pointed, profile.history_indications)
        if history_pair and accepts_history:
            continue
        yield _not_indicated(ctx, drug_line, pointed, accepts_history=accepts_history, history_pair=history_pair)


def _indicated(pointed: Sequence[str], prefixes: tuple[str, ...], exclusions: tuple[str, ...]) -> bool:
    for diagnosis in pointed:
        if diagnosis.startswith(prefixes) and not (exclusions and diagnosis.startswith(exclusions)):
            return True
    return False


def _history_pair(pointed: Sequence[str], pairs: tuple[tuple[tuple[str, ...], tuple[str, ...]], ...]) -> bool:
    return any(
        any(d.startswith(history) for d in pointed) and any(d.startswith(secondary) for d in pointed)
        for history, secondary in pairs
    )


def _not_indicated(
    ctx: ClaimContext, drug_line: DrugLine, pointed: Sequence[str], *, accepts_history: bool, history_pair: bool
) -> Hit:
    profile = drug_line.profile
    notes = [
        f" {diagnosis} falls under a withdrawn indication: {description}."
        for diagnosis in pointed
        for prefixes, description in profile.withdrawn
        if diagnosis.startswith(prefixes)
    ]
    indications = profile.indications_text
    if profile.history_indications_text:
        if accepts_history:
            indications += f", or {profile.history_indications_text}"
        elif history_pair:
            notes.append(
                f" {ctx.payer_label} does not accept {profile.history_indications_text} for {profile.code}:"
                " its diagnosis list names the primary site only."
            )
    return Hit(
        NOT_INDICATED.for_code(profile.code),
        drug_line.line.line_number,
        "diagnoses" if drug_line.line.diagnosis_pointers is None else f"{drug_line.path}.diagnosis_pointers",
        {
            "code": profile.code,
            "pointed": ", ".join(pointed) or "none",
            "indications": indications,
            "withdrawn_note": "".join(notes),
        },
    )
