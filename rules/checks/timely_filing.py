"""`timely_filing` rules: `submitted_on` against the payer's limit after the earliest line's service date."""

from __future__ import annotations

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
    days_left = (deadline - submitted_on).days
    if days_left > payer.rules.timely_filing_warning_days:
        return
    params: dict[str, object] = {
        "submitted_on": submitted_on.isoformat(),
        "service_date": earliest.isoformat(),
        "deadline": deadline.isoformat(),
        "limit": payer.timely_filing_text,
        "payer": ctx.payer_label,
    }
    if days_left < 0:
        yield Hit(EXPIRED, None, "submitted_on", params)
    else:
        yield Hit(NEAR_LIMIT, None, "submitted_on", {**params, "days_left": days_left})
