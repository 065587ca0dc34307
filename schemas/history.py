"""The records of claim history: internal contracts between the worker's two stages and its changelog.

- `DeferredClaim` (v1): the value of a record on the repartition topic (`claims.by-member`): a claim with drug
  lines that passed the single-claim rules, its verdict so far and the facts the cross-claim checks need. Keyed by
  the member key (an HMAC of the member id, never the id itself).
- `HistoryLine`: the value of a record on the changelog topic (`claims.history.changelog`), one per drug line of a
  recorded claim; a tombstone (no value) removes the line.

Both carry dates of service, claim ids, the billing NPI and units, but no member id or birth date: still, they
are claim data and need the same ACLs as the input topic.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.claim import ClaimFrequency, PayerType
from schemas.verdict import ClaimValidated

_CONFIG = ConfigDict(strict=True, frozen=True, extra="forbid")


class HistoryLine(BaseModel):
    """What history keeps of one drug line (a line billed with a profiled code, JW waste lines included)."""

    model_config = _CONFIG

    claim_id: str
    event_id: str
    line_number: Annotated[int, Field(ge=1)]
    code: str
    service_date: dt.date
    billing_npi: str
    modifiers: tuple[str, ...]  # sorted: compared as a set
    units: float
    charge: Decimal
    prior_authorization: str | None
    waste: bool  # carries the JW modifier


class ClaimFacts(BaseModel):
    """The facts of one claim the cross-claim checks read."""

    model_config = _CONFIG

    claim_id: str
    event_id: str
    member_key: str
    frequency_code: ClaimFrequency
    original_claim_id: str | None
    filed_on: dt.date  # submitted_on, or the validation date: the claim's event time (history expiry runs on it)
    payer_id: str
    payer_type: PayerType
    payer_name: str | None
    approved_units: int | None  # of the claim's prior authorization (its number is on each line)
    lines: tuple[HistoryLine, ...]


class DeferredClaim(BaseModel):
    """A claim on its way from the single-claim rules (stage A) to the cross-claim checks (stage B)."""

    model_config = _CONFIG

    schema_version: Literal[1] = 1
    verdict: ClaimValidated
    facts: ClaimFacts
