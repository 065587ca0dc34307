"""Claim history rules: a claim judged against the member's other claims (duplicates, frequency, authorization).

Pure functions: no storage, no Kafka. The worker's history stage (`worker/history/`) keeps each member's entries
(`schemas.history.HistoryLine`, one per drug line) and gives `judge` the member's entries; `claims-worker validate`
does the same across the claims of a file, so both paths give the same findings for the same claim sequence.

- The same claim id again (a redelivery, a replay, a pipeline resending) is never compared with itself: its
  entries are replaced. A replacement (frequency code 7) replaces its original's entries and is never compared
  with them; a void (8) removes its original's entries and records nothing. A 7 or 8 whose original is not in
  history gets a warning and is processed.
- Exact duplicate (error, CARC 18, group OA): a drug line matching another claim's entry on member, code, service
  date, billing NPI, modifiers (as a set) and units. Suspect duplicate (warning): same member, code and date only.
- Frequency across claims (CARC 151): two administrations (waste lines excluded) of one code on different dates
  closer than the payer's minimum interval, else the label schedule of the earlier dose's size (issue 13 B11, a
  date's billed units on one claim x unit size), else the profile's; same-date lines are the duplicate rules'
  business.
- Authorization across claims (CARC 198): units under one authorization number, summed over the member's other
  claims and this one, above this claim's approved units, when this claim alone is within them (this claim alone
  above them is `CLAIM.PRIOR_AUTHORIZATION.UNITS_EXCEEDED`). Waste lines count when the payer says so.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from rules.arithmetic import format_number
from rules.context import Hit, ProfileRuleId, resolve_payer
from rules.policy_tables import PayerPolicy, Policy
from schemas.claim import ClaimFrequency, ClaimSubmitted
from schemas.history import ClaimFacts, HistoryLine

EXACT_DUPLICATE = ProfileRuleId("{code}.DUPLICATE.EXACT")
SUSPECT_DUPLICATE = ProfileRuleId("{code}.DUPLICATE.SUSPECT")
TOO_SOON_ACROSS_CLAIMS = ProfileRuleId("{code}.FREQUENCY.TOO_SOON_ACROSS_CLAIMS")
UNITS_EXCEEDED_ACROSS_CLAIMS = "CLAIM.PRIOR_AUTHORIZATION.UNITS_EXCEEDED_ACROSS_CLAIMS"
ORIGINAL_UNKNOWN = "CLAIM.DUPLICATE.ORIGINAL_UNKNOWN"
RULES = (
    EXACT_DUPLICATE.template,
    SUSPECT_DUPLICATE.template,
    TOO_SOON_ACROSS_CLAIMS.template,
    UNITS_EXCEEDED_ACROSS_CLAIMS,
    ORIGINAL_UNKNOWN,
)
# Other claims an authorization finding names, at most (the message stays readable).
_MAX_NAMED_CLAIMS = 3


@dataclass(frozen=True, slots=True)
class Judgement:
    """What history says about one claim, and what to change in it."""

    hits: tuple[Hit, ...]
    void: bool  # the claim voids its original: outcome not_applicable, no findings but the hits here
    removed_claims: frozenset[str]  # claim ids whose entries go
    recorded: tuple[HistoryLine, ...]  # entries to write (after the removals)


def facts_of(claim: ClaimSubmitted, policy: Policy, *, member_key: str, filed_on: dt.date) -> ClaimFacts | None:
    """The history facts of a validated claim, or None when it has no line billed with a profiled code."""
    profiles = policy.profiles
    waste_modifier = policy.code_sets.waste_modifier
    authorization = claim.prior_authorization
    lines = tuple(
        HistoryLine(
            claim_id=claim.claim_id,
            event_id=claim.event_id,
            line_number=line.line_number,
            code=line.procedure_code,
            service_date=line.service_date,
            billing_npi=claim.billing_provider.npi,
            modifiers=tuple(sorted(set(line.modifiers))),
            units=line.units,
            charge=line.charge,
            prior_authorization=authorization.number if authorization is not None else None,
            waste=waste_modifier in line.modifiers,
        )
        for line in claim.lines
        if line.procedure_code in profiles
    )
    if not lines:
        return None
    return ClaimFacts(
        claim_id=claim.claim_id,
        event_id=claim.event_id,
        member_key=member_key,
        frequency_code=claim.frequency_code,
        original_claim_id=claim.original_claim_id,
        filed_on=filed_on,
        payer_id=claim.payer.id,
        payer_type=claim.payer.type,
        payer_name=claim.payer.name,
        approved_units=authorization.approved_units if authorization is not None else None,
        lines=lines,
    )


def judge(facts: ClaimFacts, history: Sequence[HistoryLine], policy: Policy) -> Judgement:
    """Judge `facts` against `history`, the member's entries (any order; this claim's own may be among them)."""
    original = facts.original_claim_id if facts.frequency_code is not ClaimFrequency.ORIGINAL else None
    removed = {facts.claim_id}
    hits: list[Hit] = []
    if original is not None:
        if any(entry.claim_id == original for entry in history):
            removed.add(original)
        else:
            hits.append(Hit(ORIGINAL_UNKNOWN, None, "original_claim_id", {"original_claim_id": original}))
    if facts.frequency_code is ClaimFrequency.VOID:
        return Judgement(tuple(hits), True, frozenset(removed), ())
    others = [entry for entry in history if entry.claim_id not in removed]
    payer, _ = resolve_payer(policy, facts.payer_id, facts.payer_type, facts.payer_name)
    for position, line in enumerate(facts.lines):
        duplicate = _duplicate(line, position, others)
        if duplicate is not None:
            hits.append(duplicate)
        elif not line.waste:
            too_soon = _too_soon(line, position, facts.lines, others, payer=payer, policy=policy)
            if too_soon is not None:
                hits.append(too_soon)
    exceeded = _authorization_exceeded(facts, others, payer)
    if exceeded is not None:
        hits.append(exceeded)
    return Judgement(tuple(hits), False, frozenset(removed), facts.lines)


def _duplicate(line: HistoryLine, position: int, others: Iterable[HistoryLine]) -> Hit | None:
    same_day = [entry for entry in others if entry.code == line.code and entry.service_date == line.service_date]
    if not same_day:
        return None
    exact = [
        entry
        for entry in same_day
        if entry.billing_npi == line.billing_npi and entry.modifiers == line.modifiers and entry.units == line.units
    ]
    rule, matches = (EXACT_DUPLICATE, exact) if exact else (SUSPECT_DUPLICATE, same_day)
    other = min(matches, key=lambda entry: (entry.claim_id, entry.line_number))
    return Hit(
        rule.for_code(line.code),
        line.line_number,
        f"lines[{position}]",
        {
            "code": line.code,
            "service_date": line.service_date.isoformat(),
            "other_claim_id": other.claim_id,
            "other_line_number": other.line_number,
            "units": format_number(line.units),
            "other_units": format_number(other.units),
        },
    )


def _too_soon(
    line: HistoryLine,
    position: int,
    own: Sequence[HistoryLine],
    others: Iterable[HistoryLine],
    *,
    payer: PayerPolicy,
    policy: Policy,
) -> Hit | None:
    profile = policy.profiles[line.code]
    overrides = payer.rules.min_days_between_doses
    fixed: tuple[int, str] | None = None
    if line.code in overrides:
        fixed = overrides[line.code], "payer policy"
    elif not profile.dose_schedules:
        fixed = profile.min_days_between_doses, "label schedule with tolerance"
    candidates = [
        entry
        for entry in others
        if entry.code == line.code and not entry.waste and entry.service_date != line.service_date
    ]
    if not candidates:
        return None
    # issue 13 B11: the earlier dose's size (a date's billed units on one claim x unit size) sets the interval.
    units_on: dict[tuple[str, dt.date], float] = {}
    if fixed is None:
        for entry in (*own, *candidates):
            if entry.code == line.code and not entry.waste:
                key = (entry.claim_id, entry.service_date)
                units_on[key] = units_on.get(key, 0) + entry.units
    closest: tuple[int, dt.date, str, int, str] | None = None
    for entry in candidates:
        days = abs((line.service_date - entry.service_date).days)
        if fixed is not None:
            min_days, basis = fixed
        else:
            earlier = line if line.service_date < entry.service_date else entry
            min_days, basis = profile.min_days_after(
                units_on[(earlier.claim_id, earlier.service_date)] * profile.unit_mg
            )
        candidate = (days, entry.service_date, entry.claim_id, min_days, basis)
        if days < min_days and (closest is None or candidate[:3] < closest[:3]):
            closest = candidate
    if closest is None:
        return None
    days, other_date, other_claim, min_days, basis = closest
    return Hit(
        TOO_SOON_ACROSS_CLAIMS.for_code(line.code),
        line.line_number,
        f"lines[{position}].service_date",
        {
            "code": line.code,
            "service_date": line.service_date.isoformat(),
            "other_claim_id": other_claim,
            "other_service_date": other_date.isoformat(),
            "days": days,
            "min_days": min_days,
            "basis": basis,
        },
    )


def _authorization_exceeded(facts: ClaimFacts, others: Sequence[HistoryLine], payer: PayerPolicy) -> Hit | None:
    approved = facts.approved_units
    number = next((line.prior_authorization for line in facts.lines if line.prior_authorization), None)
    if approved is None or number is None:
        return None
    counts_waste = payer.rules.prior_authorization_counts_waste
    own = sum(line.units for line in facts.lines if counts_waste or not line.waste)
    under_number = [
        entry for entry in others if entry.prior_authorization == number and (counts_waste or not entry.waste)
    ]
    previous = sum(entry.units for entry in under_number)
    if not under_number or own > approved or own + previous <= approved:
        return None
    claims = sorted({(entry.service_date, entry.claim_id) for entry in under_number})
    named = ", ".join(f"{claim_id} ({day.isoformat()})" for day, claim_id in claims[:_MAX_NAMED_CLAIMS])
    if len(claims) > _MAX_NAMED_CLAIMS:
        named += f" and {len(claims) - _MAX_NAMED_CLAIMS} more"
    return Hit(
        UNITS_EXCEEDED_ACROSS_CLAIMS,
        None,
        "prior_authorization.approved_units",
        {
            "number": number,
            "approved_units": approved,
            "units": format_number(own),
            "previous_units": format_number(previous),
            "total_units": format_number(own + previous),
            "other_claims": named,
            "waste": "JW waste lines included" if counts_waste else "JW waste lines excluded",
        },
    )


# Days an entry outlives the longest timely-filing window, by default (issue 12): a claim filed late, or
# reprocessed, still meets the claims it could duplicate.
RETENTION_MARGIN_DAYS = 90


def default_retention_days(policy: Policy) -> int:
    """How long history keeps an entry after its service date, unless configured: the longest filing window
    of the payer policies plus `RETENTION_MARGIN_DAYS`."""
    return longest_filing_window_days(policy) + RETENTION_MARGIN_DAYS


def longest_filing_window_days(policy: Policy) -> int:
    """The longest timely-filing window of any payer policy, in days (a calendar year counts 366)."""
    windows = [
        filing.days if filing.days is not None else 366 * (filing.calendar_years or 1)
        for payer in (*policy.payer_defaults.values(), *policy.named_payers.values())
        for filing in (payer.rules.timely_filing,)
    ]
    return max(windows)
