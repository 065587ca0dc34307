"""The rule functions, one concept per module, each with `check(ctx)` and the `RULES` ids it may emit.

Each module names its rule ids as constants and builds `RULES` from them, so a misspelt id is an error at import
(or mypy's), not a miss at run time. A profile rule's id is a `rules.context.ProfileRuleId`: `{code}` in it stands
for each drug profile's code (`JW_LINE_MISSING.for_code("J9353")` is `J9353.WASTE.JW_LINE_MISSING`).
"""

from __future__ import annotations

from typing import NamedTuple

from rules.checks import (
    administration,
    administration_time,
    code,
    coverage,
    crosswalk,
    diagnosis,
    documentation,
    frequency,
    modifier_25,
    mue,
    ndc,
    place_of_service,
    prior_authorization,
    ptp,
    timely_filing,
    units,
    vials,
    waste,
)
from rules.context import CheckFunction


class Check(NamedTuple):
    """A rule function and the rule ids (templates, as in rules.yaml) it may emit."""

    run: CheckFunction
    rules: tuple[str, ...]


# Run on every claim: lines whose code, drug name or NDC is in the similar-codes table.
EVERY_CLAIM_CHECKS: tuple[Check, ...] = (Check(crosswalk.check, crosswalk.RULES),)

# Run, besides EVERY_CLAIM_CHECKS, on claims with at least one drug line (a line billed with a profile's code).
DRUG_CLAIM_CHECKS: tuple[Check, ...] = (
    Check(code.check, code.RULES),
    Check(diagnosis.check, diagnosis.RULES),
    Check(units.check, units.RULES),
    Check(waste.check, waste.RULES),
    Check(vials.check, vials.RULES),
    Check(modifier_25.check, modifier_25.RULES),
    Check(administration.check, administration.RULES),
    Check(documentation.check, documentation.RULES),
    Check(timely_filing.check, timely_filing.RULES),
    Check(prior_authorization.check, prior_authorization.RULES),
    Check(frequency.check, frequency.RULES),
    Check(place_of_service.check, place_of_service.RULES),
    Check(coverage.check, coverage.RULES),
    Check(ndc.check, ndc.RULES),
    # issue 13 B6
    Check(administration_time.check, administration_time.RULES),
    # CMS edit tables: these run only with a policy directory (rules/ncci.py); without one they yield nothing.
    Check(mue.check, mue.RULES),
    Check(ptp.check, ptp.RULES),
)

# Every check: what a claim with drug lines runs, and what the catalogue is verified against.
ALL_CHECKS: tuple[Check, ...] = EVERY_CLAIM_CHECKS + DRUG_CLAIM_CHECKS
