"""The rule functions, one concept per module, each with `check(ctx)` and the `RULES` ids it may emit.

Each module names its rule ids as constants and builds `RULES` from them, so a misspelt id is an error at import
(or mypy's), not a miss at run time. A profile rule's id is a `rules.context.ProfileRuleId`: `{code}` in it stands
for each drug profile's code (`JW_LINE_MISSING.for_code("J9353")` is `J9353.WASTE.JW_LINE_MISSING`).
"""

from __future__ import annotations

from typing import NamedTuple

from rules.checks import (
    administration,
    code,
    crosswalk,
    diagnosis,
    documentation,
    frequency,
    modifier_25,
    ndc,
    place_of_service,
    prior_authorization,
    timely_filing,
    units,
    waste,
)
from rules.context import CheckFunction


class Check(NamedTuple):
    name: str
    run: CheckFunction
    rules: tuple[str, ...]


# Run on every claim: lines whose code, drug name or NDC is in the similar-codes table.
EVERY_CLAIM_CHECKS: tuple[Check, ...] = (Check("crosswalk", crosswalk.check, crosswalk.RULES),)

# Run on claims with at least one drug line (a line billed with a profile's code).
DRUG_CLAIM_CHECKS: tuple[Check, ...] = (
    Check("code", code.check, code.RULES),
    Check("diagnosis", diagnosis.check, diagnosis.RULES),
    Check("units", units.check, units.RULES),
    Check("waste", waste.check, waste.RULES),
    Check("modifier_25", modifier_25.check, modifier_25.RULES),
    Check("administration", administration.check, administration.RULES),
    Check("documentation", documentation.check, documentation.RULES),
    Check("timely_filing", timely_filing.check, timely_filing.RULES),
    Check("prior_authorization", prior_authorization.check, prior_authorization.RULES),
    Check("frequency", frequency.check, frequency.RULES),
    Check("place_of_service", place_of_service.check, place_of_service.RULES),
    Check("ndc", ndc.check, ndc.RULES),
)

ALL_CHECKS: tuple[Check, ...] = EVERY_CLAIM_CHECKS + DRUG_CLAIM_CHECKS
