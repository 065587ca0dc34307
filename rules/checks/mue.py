"""`units` rules from CMS's medically unlikely edits (MUE), on every line of a claim with drug lines.

Run only when a policy directory with MUE tables is loaded (`rules.ncci`); the table is the setting's
(practitioner for professional claims, facility outpatient hospital for institutional ones) in effect on the
line's service date. MUE adjudication indicator 1: the line's units against the MUE; 2 (policy) and 3 (clinical):
the units of every line of that code and date, summed, the finding on the first of those lines.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

from rules.arithmetic import format_number
from rules.context import ClaimContext, Hit, RuleResult, Skip
from rules.ncci import MueLimit, MueTable, Setting
from schemas.claim import ClaimLine, ClaimType

LINE_EXCEEDED = "CLAIM.UNITS.MUE_LINE_EXCEEDED"
DATE_EXCEEDED = "CLAIM.UNITS.MUE_DATE_EXCEEDED"
RULES = (LINE_EXCEEDED, DATE_EXCEEDED)

_KINDS = {
    1: "indicator 1, per claim line",
    2: "indicator 2, per date of service, absolute (policy)",
    3: "indicator 3, per date of service (clinical)",
}


def setting_of(claim_type: ClaimType) -> Setting:
    """Practitioner tables for professional claims, facility (outpatient hospital) tables for institutional ones."""
    return Setting.FACILITY if claim_type is ClaimType.INSTITUTIONAL else Setting.PRACTITIONER


def check(ctx: ClaimContext) -> Iterator[RuleResult]:
    ncci = ctx.policy.ncci
    if not ncci.mue:
        return  # no policy directory (or no MUE table in it): the MUE rules do not run
    setting = setting_of(ctx.claim.claim_type)
    if setting not in ncci.mue:
        yield from _skips(f"no {setting.value} MUE table in the policy directory")
        return
    # (code, date) -> (limit, table, the lines) for the date-of-service edits (indicators 2 and 3).
    by_date: dict[tuple[str, dt.date], tuple[MueLimit, MueTable, list[tuple[int, ClaimLine]]]] = {}
    tables: dict[dt.date, MueTable | None] = {}
    for position, line in enumerate(ctx.claim.lines):
        day = line.service_date
        table = tables[day] if day in tables else tables.setdefault(day, ncci.mue_on(setting, day))
        if table is None:
            yield from _skips(f"line {line.line_number}: no {setting.value} MUE table in effect on {day.isoformat()}")
            continue
        limit = table.limits.get(line.procedure_code)
        if limit is None:
            continue
        if not limit.per_line:
            by_date.setdefault((line.procedure_code, day), (limit, table, []))[2].append((position, line))
        elif line.units > limit.value:
            yield _hit(LINE_EXCEEDED, (position, line), units=line.units, limit=limit, table=table, line_count=1)
    for limit, table, lines in by_date.values():
        total = sum(line.units for _, line in lines)
        if total > limit.value:
            yield _hit(DATE_EXCEEDED, lines[0], units=total, limit=limit, table=table, line_count=len(lines))


def _skips(reason: str) -> Iterator[RuleResult]:
    yield Skip(LINE_EXCEEDED, reason)
    yield Skip(DATE_EXCEEDED, reason)


def _hit(
    rule_id: str, at: tuple[int, ClaimLine], *, units: float, limit: MueLimit, table: MueTable, line_count: int
) -> Hit:
    position, line = at
    return Hit(
        rule_id,
        line.line_number,
        f"lines[{position}].units",
        {
            "procedure_code": line.procedure_code,
            "service_date": line.service_date.isoformat(),
            "units": format_number(units),
            "lines": "1 line" if line_count == 1 else f"{line_count} lines summed",
            "mue": limit.value,
            "indicator": limit.indicator,
            "kind": _KINDS.get(limit.indicator, "per date of service"),
            "rationale": limit.rationale or "none given",
            "table": f"{table.source_file}, effective {table.effective_from.isoformat()}",
        },
    )
