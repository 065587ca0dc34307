"""`timely_filing` rules: `submitted_on` against the payer's limit after each line's service date.

Per line (issue 13 B8): a line past the limit fails on its own (a line-level finding naming it); the other lines
are judged on their own. The near-limit warning is claim-level, for the earliest date still on time.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

from rules.context import ClaimContext, Hit, RuleResult

EXPIRED = "CLAIM.TIMELY_FILING.EXPIRED"
BEFORE_SERVICE = "CLAIM.TIMELY_FILING.BEFORE_SERVICE_DATE"
NEAR_LIMIT = "CLAIM.TIMELY_FILING.NEAR_LIMIT"
RULES = (EXPIRED, BEFORE_SERVICE, NEAR_LIMIT)


def check(ctx: ClaimContext) -> Iterator[RuleResult]:
    submitted_on = ctx.submitted_on
    if submitted_on < ctx.latest_service_date:
        yield Hit(
            BEFORE_SERVICE,
            None,
            "submitted_on",
            {"submitted_on": submitted_on.isoformat(), "service_date": ctx.latest_service_date.isoformat()},
        )
    payer = ctx.payer
    earliest = ctx.earliest_service_date
    deadline = payer.filing_deadline(earliest)
    # The fast path: the earliest date's limit is far off, so every line's is.
    if (deadline - submitted_on).days > payer.rules.timely_filing_warning_days:
        return
    # One finding per late service date, on its first line, naming its lines.
    by_date: dict[dt.date, list[tuple[int, int]]] = {}
    for position, line in enumerate(ctx.claim.lines):
        by_date.setdefault(line.service_date, []).append((position, line.line_number))
    deadlines: dict[dt.date, dt.date] = {}
    near: dt.date | None = None  # the earliest service date of a line still on time
    for day, lines in sorted(by_date.items()):
        line_deadline = deadlines[day] = payer.filing_deadline(day)
        if (line_deadline - submitted_on).days >= 0:
            near = day if near is None else near
            continue
        position, first_number = lines[0]
        numbers = [str(number) for _, number in lines]
        named = f"Line {numbers[0]}" if len(numbers) == 1 else f"Lines {', '.join(numbers[:-1])} and {numbers[-1]}"
        yield Hit(
            EXPIRED,
            first_number,
            f"lines[{position}].service_date",
            {**_params(ctx, day, line_deadline), "line": f"{named}: "},
        )
    if near is None:
        return
    near_deadline = deadlines[near]
    days_left = (near_deadline - submitted_on).days
    if days_left <= payer.rules.timely_filing_warning_days:
        yield Hit(NEAR_LIMIT, None, "submitted_on", {**_params(ctx, near, near_deadline), "days_left": days_left})


def _params(ctx: ClaimContext, service_date: dt.date, deadline: dt.date) -> dict[str, object]:
    return {
        "submitted_on": ctx.submitted_on.isoformat(),
        "service_date": service_date.isoformat(),
        "deadline": deadline.isoformat(),
        "limit": ctx.payer.timely_filing_text,
        "payer": ctx.payer_label,
    }
