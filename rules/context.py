"""What every rule receives: the claim plus what is computed once per claim (payer policy, drug lines).

Rules yield `Hit` (a finding, by rule id, with the values its message template needs) or `Skip` (the rule
could not run for lack of data: it becomes a `not_evaluated` entry, never a silent pass). Check modules name
their rule ids as module constants: a claim-level id as a string, a profile rule's id as a `ProfileRuleId`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from types import MappingProxyType
from typing import NamedTuple

from rules.arithmetic import whole_units_in
from rules.policy_tables import PayerPolicy, Policy, Profile
from schemas.claim import ClaimLine, ClaimSubmitted, PayerType

_CODE = "{code}"


@dataclass(frozen=True, slots=True)
class ProfileRuleId:
    """The id of a profile rule as rules.yaml writes it, `{code}.<CATEGORY>.<CONDITION>` (one rule per profile).

    `template` is what the catalogue is checked against; `for_code("J9353")` is the id of J9353's rule. Raises
    ValueError when `template` does not start with `{code}.` or lacks a category and a condition.
    """

    template: str

    def __post_init__(self) -> None:
        parts = self.template.split(".")
        if len(parts) != 3 or parts[0] != _CODE or not all(parts[1:]):
            raise ValueError(f"profile rule id {self.template!r} is not {_CODE}.<CATEGORY>.<CONDITION>")

    def for_code(self, code: str) -> str:
        """The rule id for the profile of `code`, e.g. `J9353.WASTE.JZ_MISSING`."""
        return self.template.replace(_CODE, code, 1)


class Hit(NamedTuple):
    """A finding of rule `rule_id`; `params` fill the rule's message and provider_action templates."""

    rule_id: str
    line_number: int | None
    field: str
    params: Mapping[str, object]


class Skip(NamedTuple):
    """Rule `rule_id` could not run on this claim (or line) for the `reason` given."""

    rule_id: str
    reason: str


RuleResult = Hit | Skip
CheckFunction = Callable[["ClaimContext"], Iterable[RuleResult]]


class DrugLine(NamedTuple):
    """A line billed with a profile's code; a waste line when it carries the JW modifier, or when it is recognised
    as the waste line without it (`jw_missing`: see `_recognise_unmarked_waste`)."""

    # Position of the line in claim.lines (field paths count from 0); `index` would shadow tuple.index.
    position: int
    line: ClaimLine
    profile: Profile
    is_waste: bool
    jw_missing: bool = False

    @property
    def path(self) -> str:
        return f"lines[{self.position}]"


class ClaimContext(NamedTuple):
    """One claim and what is computed once for it. NamedTuple: immutable and cheap to build per claim."""

    claim: ClaimSubmitted
    policy: Policy
    payer: PayerPolicy
    # How messages name the payer: the named payer's or the claim's payer name, else Medicare/Medicaid/the id.
    payer_label: str
    submitted_on: dt.date
    drug_lines: tuple[DrugLine, ...]
    doses: tuple[DrugLine, ...]
    waste_lines: tuple[DrugLine, ...]
    # Computed only for claims with drug lines (the claim-level checks run on no other claims): the procedure
    # codes billed on each service date, and the first and last service dates.
    codes_on: Mapping[dt.date, AbstractSet[str]]
    earliest_service_date: dt.date
    latest_service_date: dt.date
    # The drug lines per (profile code, service date), in line order: (doses, waste lines). The waste, vial and
    # frequency rules judge a code's date as one dose (issue 13 B2).
    drug_groups: Mapping[tuple[str, dt.date], tuple[list[DrugLine], list[DrugLine]]]


_NO_CODES: Mapping[dt.date, AbstractSet[str]] = MappingProxyType({})
_NO_GROUPS: Mapping[tuple[str, dt.date], tuple[list[DrugLine], list[DrugLine]]] = MappingProxyType({})


def resolve_payer(
    policy: Policy, payer_id: str, payer_type: PayerType, payer_name: str | None
) -> tuple[PayerPolicy, str | None]:
    """The payer's policy (a named payer's, else its type's defaults) and how messages name it (or None)."""
    named = policy.named_payers.get(payer_id)
    payer = named if named is not None else policy.payer_defaults[payer_type.value]
    return payer, (named.label if named is not None else None) or payer_name or payer.label


def build_context(claim: ClaimSubmitted, policy: Policy, validated_at: dt.datetime) -> ClaimContext:
    """The context of one claim; `submitted_on` defaults to the UTC date of `validated_at` (the contract)."""
    profiles = policy.profiles
    waste_modifier = policy.code_sets.waste_modifier
    lines = claim.lines
    drug_lines: list[DrugLine] = []
    doses: list[DrugLine] = []
    waste_lines: list[DrugLine] = []
    for index, line in enumerate(lines):
        profile = profiles.get(line.procedure_code)
        if profile is not None:
            is_waste = waste_modifier in line.modifiers
            drug_line = DrugLine(index, line, profile, is_waste)
            drug_lines.append(drug_line)
            (waste_lines if is_waste else doses).append(drug_line)
    payer, label = resolve_payer(policy, claim.payer.id, claim.payer.type, claim.payer.name)
    if len(doses) > 1 and payer.rules.accepts_jw:
        doses, waste_lines, drug_lines = _recognise_unmarked_waste(doses, waste_lines, drug_lines)
    submitted_on = claim.submitted_on
    if submitted_on is None:
        submitted_on = validated_at.astimezone(dt.UTC).date()
    first_date = lines[0].service_date
    if not drug_lines:
        return ClaimContext(
            claim, policy, payer, label or f"payer {claim.payer.id}", submitted_on, (), (), (), _NO_CODES,
            first_date, first_date, _NO_GROUPS,
        )  # fmt: skip
    codes_on: dict[dt.date, set[str]] = {}
    earliest = latest = first_date
    for line in lines:
        day = line.service_date
        codes = codes_on.get(day)
        if codes is None:
            codes_on[day] = {line.procedure_code}
            if day < earliest:
                earliest = day
            elif day > latest:
                latest = day
        else:
            codes.add(line.procedure_code)
    drug_groups: dict[tuple[str, dt.date], tuple[list[DrugLine], list[DrugLine]]] = {}
    for drug_line in drug_lines:
        key = (drug_line.profile.code, drug_line.line.service_date)
        group = drug_groups.get(key)
        if group is None:
            group = drug_groups[key] = ([], [])
        group[1 if drug_line.is_waste else 0].append(drug_line)
    return ClaimContext(
        claim, policy, payer, label or f"payer {claim.payer.id}", submitted_on, tuple(drug_lines), tuple(doses),
        tuple(waste_lines), codes_on, earliest, latest, drug_groups,
    )  # fmt: skip


def _recognise_unmarked_waste(
    doses: list[DrugLine], waste_lines: list[DrugLine], drug_lines: list[DrugLine]
) -> tuple[list[DrugLine], list[DrugLine], list[DrugLine]]:
    """The waste line billed without JW (issue 17 U1): a line of the same code and date as a dose, with no
    administration record of its own, no JW line beside it, and exactly the whole units of the dose's recorded
    discarded amount (k = floor(discarded_mg / unit size) >= 1). It is judged as the waste line it is (the waste
    rules say to add JW) rather than as a second dose with no record, which gave a 0-days frequency finding, a
    missing administration record and every waste rule skipped."""
    marked = {(w.profile.code, w.line.service_date) for w in waste_lines}
    recognised: dict[int, DrugLine] = {}
    for dose in doses:
        administration = dose.line.administration
        if administration is None or administration.discarded_mg is None:
            continue
        key = (dose.profile.code, dose.line.service_date)
        if key in marked:
            continue
        k = whole_units_in(administration.discarded_mg, dose.profile.unit_mg)
        for other in doses:
            if (
                k >= 1
                and other.line.administration is None
                and (other.profile.code, other.line.service_date) == key
                and other.line.units == k
                and other.position not in recognised
            ):
                recognised[other.position] = other._replace(is_waste=True, jw_missing=True)
                marked.add(key)
                break
    if not recognised:
        return doses, waste_lines, drug_lines
    all_lines = [recognised.get(d.position, d) for d in drug_lines]
    return (
        [d for d in all_lines if not d.is_waste],
        [d for d in all_lines if d.is_waste],
        all_lines,
    )
