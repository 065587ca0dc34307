"""`administration` rules on administration units (issue 13 B6): 96413, +96415, +96417 and 96409 on a drug's
service date, against the documented infusion times and the drugs billed that day.

The rules are claim-scoped: an administration line is one finding however many drug profiles share its date.
The drugs of a date are its dose lines (profile codes, not waste) and its other non-waste drug-code lines (J-codes
without a profile count as drugs too: a drug the rules know nothing about still justifies a sequential infusion).
A drug's infusion time is the longest documented on its lines (a dose split over two NDC lines is one infusion).
Where a drug of the date has no usable start/end time, the rules that need times are not evaluated.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterator
from typing import NamedTuple

from rules.arithmetic import format_number
from rules.context import ClaimContext, Hit, RuleResult, Skip
from rules.policy_tables import CodeSets
from schemas.claim import ClaimLine

INITIAL_INFUSION_MORE_THAN_ONCE = "CLAIM.ADMINISTRATION.INITIAL_INFUSION_MORE_THAN_ONCE"
ADDITIONAL_HOURS_EXCEED_TIME = "CLAIM.ADMINISTRATION.ADDITIONAL_HOURS_EXCEED_TIME"
SEQUENTIAL_EXCEEDS_DRUGS = "CLAIM.ADMINISTRATION.SEQUENTIAL_EXCEEDS_DRUGS"
PUSH_BILLED_AS_INFUSION = "CLAIM.ADMINISTRATION.PUSH_BILLED_AS_INFUSION"
INFUSION_BILLED_AS_PUSH = "CLAIM.ADMINISTRATION.INFUSION_BILLED_AS_PUSH"
RULES = (
    INITIAL_INFUSION_MORE_THAN_ONCE,
    ADDITIONAL_HOURS_EXCEED_TIME,
    SEQUENTIAL_EXCEEDS_DRUGS,
    PUSH_BILLED_AS_INFUSION,
    INFUSION_BILLED_AS_PUSH,
)

_AdminLines = list[tuple[int, ClaimLine]]


class _Day(NamedTuple):
    """One service date being judged: its drugs' infusion minutes (None: no usable times)."""

    code_sets: CodeSets
    day: dt.date
    minutes_by_drug: dict[str, float | None]

    def params(self) -> dict[str, object]:
        code_sets = self.code_sets
        drugs = sorted(self.minutes_by_drug)
        return {
            "service_date": self.day.isoformat(),
            "infusion_times": ", ".join(
                f"{drug} {'no times' if minutes is None else format_number(round(minutes)) + ' minutes'}"
                for drug, minutes in sorted(self.minutes_by_drug.items())
            ),
            "drug_count": len(drugs),
            "drugs": ", ".join(drugs),
            "initial_code": code_sets.initial_infusion,
            "additional_hour_code": code_sets.additional_hour_infusion,
            "sequential_code": code_sets.sequential_infusion,
            "push_code": code_sets.chemotherapy_push,
            "push_max_minutes": code_sets.push_max_minutes,
            "limit_minutes": code_sets.long_infusion_minutes,
        }


def check(ctx: ClaimContext) -> Iterator[RuleResult]:
    code_sets = ctx.policy.code_sets
    administration_codes = code_sets.administration_time_codes
    codes_on = ctx.codes_on
    doses = ctx.doses
    days = [doses[0].line.service_date] if len(doses) == 1 else sorted({d.line.service_date for d in doses})
    for day in days:
        if not codes_on[day].isdisjoint(administration_codes):
            minutes_by_drug, billed = _gather(ctx, day, administration_codes)
            yield from _judge(code_sets, day, minutes_by_drug, billed)


def _gather(
    ctx: ClaimContext, day: dt.date, administration_codes: frozenset[str]
) -> tuple[dict[str, float | None], dict[str, _AdminLines]]:
    """The drugs of `day` (key -> minutes of its longest documented infusion, None: no usable times) and its
    administration lines by code."""
    minutes_by_drug: dict[str, float | None] = {}
    for dose in ctx.doses:
        if dose.line.service_date == day:
            _add_drug(minutes_by_drug, dose.profile.code, dose.line)
    policy = ctx.policy
    profiles = policy.profiles
    prefixes = policy.code_sets.drug_code_prefixes
    waste_modifier = policy.code_sets.waste_modifier
    billed: dict[str, _AdminLines] = {}
    for index, line in enumerate(ctx.claim.lines):
        if line.service_date != day:
            continue
        code = line.procedure_code
        if code in administration_codes:
            billed.setdefault(code, []).append((index, line))
        elif code not in profiles and code.startswith(prefixes) and waste_modifier not in line.modifiers:
            # A not-otherwise-classified code may stand for a different drug on each line.
            key = f"{code} line {line.line_number}" if code in policy.noc_codes else code
            _add_drug(minutes_by_drug, key, line)
    return minutes_by_drug, billed


def _judge(
    code_sets: CodeSets, day: dt.date, minutes_by_drug: dict[str, float | None], billed: dict[str, _AdminLines]
) -> Iterator[RuleResult]:
    # The message parameters are built only for a finding: most claims bill what their times support.
    the_day = _Day(code_sets, day, minutes_by_drug)
    untimed = [drug for drug, minutes in minutes_by_drug.items() if minutes is None]
    timed = [minutes for minutes in minutes_by_drug.values() if minutes is not None]
    push_max = code_sets.push_max_minutes

    initial = billed.get(code_sets.initial_infusion)
    if initial:
        if untimed:
            yield Skip(PUSH_BILLED_AS_INFUSION, _no_times(day, untimed))
        elif max(timed) <= push_max:
            index, line = initial[0]
            params = the_day.params()
            yield Hit(PUSH_BILLED_AS_INFUSION, line.line_number, f"lines[{index}].procedure_code", params)
            initial = None
        if initial:
            yield from _over(INITIAL_INFUSION_MORE_THAN_ONCE, initial, 1, the_day)

    additional = billed.get(code_sets.additional_hour_infusion)
    if additional and untimed:
        yield Skip(ADDITIONAL_HOURS_EXCEED_TIME, _no_times(day, untimed))
    elif additional:
        hours = sum(_additional_hours(minutes, code_sets) for minutes in timed)
        yield from _over(ADDITIONAL_HOURS_EXCEED_TIME, additional, hours, the_day)

    sequential = billed.get(code_sets.sequential_infusion)
    if sequential:
        allowed = len(minutes_by_drug) - 1
        yield from _over(SEQUENTIAL_EXCEEDS_DRUGS, sequential, allowed, the_day)

    push = billed.get(code_sets.chemotherapy_push)
    if push and untimed:
        yield Skip(INFUSION_BILLED_AS_PUSH, _no_times(day, untimed))
    elif push and min(timed) > push_max:
        index, line = push[0]
        params = the_day.params()
        yield Hit(INFUSION_BILLED_AS_PUSH, line.line_number, f"lines[{index}].procedure_code", params)


def _no_times(day: dt.date, untimed: list[str]) -> str:
    return f"{day.isoformat()}: no usable infusion start and end time for {', '.join(sorted(untimed))}"


def _add_drug(minutes_by_drug: dict[str, float | None], drug: str, line: ClaimLine) -> None:
    administration = line.administration
    minutes: float | None = None
    if administration is not None:
        started, ended = administration.started_at, administration.ended_at
        if started is not None and ended is not None and ended >= started:
            minutes = (ended - started).total_seconds() / 60
    known = minutes_by_drug.get(drug)
    if known is None or (minutes is not None and minutes > known):
        minutes_by_drug[drug] = minutes


def _additional_hours(minutes: float, code_sets: CodeSets) -> int:
    # 91-150 minutes = 1, 151-210 = 2, ...: one unit per started additional hour beyond the limit.
    beyond = minutes - code_sets.long_infusion_minutes
    return 0 if beyond <= 0 else math.ceil(beyond / code_sets.additional_hour_minutes)


def _over(rule_id: str, lines: _AdminLines, allowed: int, the_day: _Day) -> tuple[Hit, ...]:
    """One finding on the line whose units take the date's total above `allowed`."""
    if len(lines) == 1:
        # One line (the usual case): no running total needed.
        index, line = lines[0]
        total = line.units
        if total <= allowed:
            return ()
    else:
        total = sum(line.units for _, line in lines)
        if total <= allowed:
            return ()
        running = 0.0
        over = lines[-1]
        for item in lines:
            running += item[1].units
            if running > allowed:
                over = item
                break
        index, line = over
    params = {**the_day.params(), "units": format_number(total), "allowed": allowed}
    return (Hit(rule_id, line.line_number, f"lines[{index}].units", params),)
