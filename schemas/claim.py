"""claim.submitted v1: the event the claims pipeline publishes and the worker consumes.

The field names, types and limits below are the contract with producers written in other languages; the
committed JSON Schema (`schemas/json/claim.submitted.v1.json`) is generated from these models.

Validation is strict about types (a number sent as a string is a schema failure, not silently coerced) but
lenient about spelling where billing staff are: codes are case-insensitive and normalised to upper case, and
ICD-10-CM codes are accepted with or without the dot. Unknown fields are ignored so producers can add fields
without breaking the worker; each is reported as a warning (`schemas.unknown_fields`, SCHEMA.UNKNOWN_FIELD).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints, model_validator
from pydantic_core import PydanticCustomError

SCHEMA_VERSION = 1

_MODEL_CONFIG = ConfigDict(strict=True, extra="ignore", frozen=True, allow_inf_nan=False)

UpperCode = Annotated[str, StringConstraints(strip_whitespace=True, to_upper=True)]
# Codes are ASCII letters and digits: a look-alike (a Cyrillic Je for the J, fullwidth digits) is a schema failure,
# not a code the rules would call "not applicable". pydantic checks a pattern on the value as sent (before the strip
# and the upper-casing), hence the surrounding whitespace and the lower case here.
ASCII_CODE_PATTERN = r"^\s*[A-Za-z0-9]+\s*$"
# Identifiers echoed into every verdict (and used as Kafka keys): no control characters such as NUL.
IDENTIFIER_PATTERN = r"^[^\x00-\x1f\x7f]+$"


def normalise_icd10cm(code: str) -> str:
    """Return an ICD-10-CM code in its printed form: upper case, dot after the category (e.g. `C50.911`)."""
    compact = code.strip().upper().replace(".", "")
    return f"{compact[:3]}.{compact[3:]}" if len(compact) > 3 else compact


# A dotted ICD-10-CM code is at most 8 characters; the bound keeps hostile megabyte strings out of the rules.
DiagnosisCode = Annotated[
    str,
    StringConstraints(min_length=1, max_length=10, pattern=r"^\s*[A-Za-z0-9.]+\s*$"),
    AfterValidator(normalise_icd10cm),
]


class ClaimType(StrEnum):
    PROFESSIONAL = "professional"
    INSTITUTIONAL = "institutional"


class ClaimFrequency(StrEnum):
    """The claim frequency code (X12 CLM05-3, the third digit of the UB-04 type of bill)."""

    ORIGINAL = "1"
    REPLACEMENT = "7"  # replaces the prior claim named by `original_claim_id`
    VOID = "8"  # voids (cancels) the prior claim named by `original_claim_id`


class PayerType(StrEnum):
    MEDICARE = "medicare"
    MEDICAID = "medicaid"
    COMMERCIAL = "commercial"


class NdcUnit(StrEnum):
    """NDC unit of measure qualifiers of the 837 CTP05-1 element."""

    UN = "UN"
    ML = "ML"
    GR = "GR"
    F2 = "F2"
    ME = "ME"


class Payer(BaseModel):
    model_config = _MODEL_CONFIG

    id: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    type: PayerType
    name: Annotated[str, StringConstraints(max_length=200)] | None = None


class Patient(BaseModel):
    """The member. Carries patient data: never log or label anything from it."""

    model_config = _MODEL_CONFIG

    member_id: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    birth_date: dt.date | None = None
    weight_kg: Annotated[float, Field(gt=0, le=1000)] | None = None


class Provider(BaseModel):
    model_config = _MODEL_CONFIG

    npi: Annotated[str, StringConstraints(pattern=r"^[0-9]{10}$")]


class PriorAuthorization(BaseModel):
    model_config = _MODEL_CONFIG

    number: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    approved_units: Annotated[int, Field(ge=0)] | None = None
    valid_from: dt.date | None = None
    valid_to: dt.date | None = None


class Ndc(BaseModel):
    """The National Drug Code of the product given (loop 2410 of an 837).

    `code` is kept as sent: its format (11 digits, or 5-4-2 with hyphens) is a billing rule with its own
    finding, not a schema failure, so a claim with a mistyped NDC still gets every other finding.
    """

    model_config = _MODEL_CONFIG

    code: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=20)]
    quantity: Annotated[float, Field(gt=0)]
    unit: NdcUnit


class Administration(BaseModel):
    """The medication administration record from the EHR for a drug line.

    Every field is optional because missing documentation is itself a finding of the rules.
    """

    model_config = _MODEL_CONFIG

    drug: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)] | None = None
    dose_mg: Annotated[float, Field(ge=0)] | None = None
    administered_mg: Annotated[float, Field(ge=0)] | None = None
    discarded_mg: Annotated[float, Field(ge=0)] | None = None
    started_at: AwareDatetime | None = None
    ended_at: AwareDatetime | None = None
    pre_infusion_assessment: bool | None = None
    response_documented: bool | None = None


class ClaimLine(BaseModel):
    """One service line (837 loop 2400)."""

    model_config = _MODEL_CONFIG

    line_number: Annotated[int, Field(ge=1)]
    service_date: dt.date
    procedure_code: Annotated[UpperCode, StringConstraints(min_length=5, max_length=5, pattern=ASCII_CODE_PATTERN)]
    modifiers: Annotated[
        list[Annotated[UpperCode, StringConstraints(min_length=2, max_length=2, pattern=ASCII_CODE_PATTERN)]],
        Field(max_length=4),
    ] = []
    units: Annotated[float, Field(gt=0)]
    charge: Annotated[Decimal, Field(ge=0)]
    diagnosis_pointers: Annotated[list[Annotated[int, Field(ge=1)]], Field(min_length=1, max_length=4)] | None = None
    ndc: Ndc | None = None
    administration: Administration | None = None


def _unique_line_numbers(lines: list[ClaimLine]) -> list[ClaimLine]:
    seen: set[int] = set()
    for line in lines:
        if line.line_number in seen:
            raise ValueError(f"line_number {line.line_number} appears more than once")
        seen.add(line.line_number)
    return lines


class ClaimSubmitted(BaseModel):
    """A claim ready to be filed with a payer, as published on the input topic."""

    model_config = _MODEL_CONFIG

    # A strict int bounded to exactly 1: `true` and `1.0` are not schema version 1.
    schema_version: Annotated[int, Field(ge=SCHEMA_VERSION, le=SCHEMA_VERSION, json_schema_extra={"const": 1})]
    event_id: Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=IDENTIFIER_PATTERN)]
    claim_id: Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=IDENTIFIER_PATTERN)]
    claim_type: ClaimType = ClaimType.PROFESSIONAL
    frequency_code: ClaimFrequency = Field(
        default=ClaimFrequency.ORIGINAL,
        description="X12 CLM05-3: 1 original, 7 replacement of a prior claim, 8 void of a prior claim.",
    )
    original_claim_id: (
        Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=IDENTIFIER_PATTERN)] | None
    ) = Field(
        default=None, description="The claim a replacement (7) or void (8) refers to (X12 REF*F8); required for those."
    )
    type_of_bill: Annotated[str, StringConstraints(pattern=r"^[0-9]{3,4}$")] | None = Field(
        default=None, description="Institutional claims: 3 or 4 digits (X12 CLM05-1 + CLM05-3, UB-04 FL4), e.g. 131."
    )
    submitted_on: dt.date | None = Field(
        default=None, description="When the claim is (to be) filed with the payer; default: the validation date (UTC)."
    )
    payer: Payer
    patient: Patient
    billing_provider: Provider
    rendering_provider: Provider | None = None
    place_of_service: Annotated[str, StringConstraints(pattern=r"^[0-9]{2}$")] | None = None
    diagnoses: Annotated[list[DiagnosisCode], Field(min_length=1, max_length=12)]
    prior_authorization: PriorAuthorization | None = None
    lines: Annotated[list[ClaimLine], Field(min_length=1, max_length=50), AfterValidator(_unique_line_numbers)]

    @model_validator(mode="after")
    def _professional_claims_need_place_of_service(self) -> ClaimSubmitted:
        if self.claim_type is ClaimType.PROFESSIONAL and self.place_of_service is None:
            # A model-level error has no location; its type names the field (see schemas.parsing).
            raise PydanticCustomError(
                "place_of_service_required", "place_of_service is required for professional claims"
            )
        return self

    @model_validator(mode="after")
    def _replacements_and_voids_name_their_original(self) -> ClaimSubmitted:
        if self.frequency_code is not ClaimFrequency.ORIGINAL and self.original_claim_id is None:
            raise PydanticCustomError(
                "original_claim_id_required",
                "original_claim_id is required when frequency_code is 7 (replacement) or 8 (void)",
            )
        return self
