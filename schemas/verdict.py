"""claim.validated v1: the verdict the worker publishes for every claim it could identify.

`outcome` is `fail` iff a finding has severity `error`; `pass` when a rule set applied and found no error;
`not_applicable` when no rule set applies to the claim (e.g. an office visit alone).
"""

from __future__ import annotations

import datetime as dt
import uuid
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

# Fixed namespace for verdict ids: uuid5(namespace, source event id) gives the same verdict id for a
# redelivered input, so downstream consumers can de-duplicate in at-least-once mode. Never change it.
VERDICT_ID_NAMESPACE = uuid.UUID("6f1c2a4e-4b0d-5c1e-9a57-3c9d0e2b8f11")

_MODEL_CONFIG = ConfigDict(frozen=True, extra="forbid")


def verdict_event_id(source_event_id: str) -> str:
    """The verdict's `event_id`: deterministic from the input event's id."""
    return str(uuid.uuid5(VERDICT_ID_NAMESPACE, source_event_id))


class Outcome(StrEnum):
    PASS = "pass"  # noqa: S105 - an outcome, not a password
    FAIL = "fail"
    NOT_APPLICABLE = "not_applicable"


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


class Category(StrEnum):
    """The closed list of finding categories of the contract."""

    SCHEMA = "schema"
    CODE = "code"
    DRUG_CODE_MISMATCH = "drug_code_mismatch"
    DIAGNOSIS = "diagnosis"
    UNITS = "units"
    WASTE = "waste"
    MODIFIER_25 = "modifier_25"
    ADMINISTRATION = "administration"
    DOCUMENTATION = "documentation"
    TIMELY_FILING = "timely_filing"
    PRIOR_AUTHORIZATION = "prior_authorization"
    FREQUENCY = "frequency"
    PLACE_OF_SERVICE = "place_of_service"
    NDC = "ndc"
    DUPLICATE = "duplicate"  # the same service billed on another claim (claim history)
    BUNDLING = "bundling"  # same-day code pairs a payer pays only together or not at all
    COVERAGE = "coverage"  # coverage criteria of the patient, e.g. the labelled age


class GroupCode(StrEnum):
    """Claim adjustment group codes (X12): who is predicted to bear the adjustment."""

    CO = "CO"
    PR = "PR"
    OA = "OA"
    PI = "PI"


class Finding(BaseModel):
    """One thing wrong with (or worth knowing about) a claim, with the fix and the denial it predicts."""

    model_config = _MODEL_CONFIG

    rule_id: str = Field(description="Stable identity of the check, e.g. J9353.WASTE.JW_MISSING.")
    category: Category
    severity: Severity
    line_number: int | None = Field(description="The claim line's line_number; null for a claim-level finding.")
    field: str = Field(description="Path of the field concerned, e.g. lines[0].modifiers.")
    message: str
    provider_action: str = Field(description="How the provider fixes it before filing.")
    carc: str | None = Field(description="Predicted claim adjustment reason code.")
    rarc: list[str] = Field(description="Predicted remittance advice remark codes.")
    group_code: GroupCode | None


class NotEvaluated(BaseModel):
    """A check that could not run for lack of data: reported, never silently passed."""

    model_config = _MODEL_CONFIG

    rule_id: str
    reason: str


class RuleSetRef(BaseModel):
    model_config = _MODEL_CONFIG

    id: str
    version: str


class SourceRecord(BaseModel):
    """Kafka coordinates of the input record the verdict answers."""

    model_config = _MODEL_CONFIG

    topic: str
    partition: Annotated[int, Field(ge=0)]
    offset: Annotated[int, Field(ge=0)]


class ClaimValidated(BaseModel):
    """The verdict for one claim."""

    model_config = _MODEL_CONFIG

    schema_version: Literal[1] = 1
    event_id: str
    claim_id: str
    source_event_id: str
    outcome: Outcome
    findings: list[Finding]
    not_evaluated: list[NotEvaluated]
    ruleset: RuleSetRef
    validated_at: AwareDatetime
    source: SourceRecord | None = Field(description="Where the input came from; null when validated offline.")


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
