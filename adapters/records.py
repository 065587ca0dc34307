"""A converted claim event ready to print or publish: value bytes, Kafka key and the headers naming its source."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

# Header names on published claim events (lowercase, dotted); values are ASCII.
SOURCE_FORMAT = "source.format"
X12_SENDER_ID = "source.x12.sender_id"  # ISA06, the interchange sender (trading partner), not a person
X12_INTERCHANGE_CONTROL_NUMBER = "source.x12.interchange_control_number"  # ISA13
X12_GROUP_CONTROL_NUMBER = "source.x12.group_control_number"  # GS06
X12_TRANSACTION_CONTROL_NUMBER = "source.x12.transaction_control_number"  # ST02
X12_VERSION = "source.x12.version"  # GS08, e.g. 005010X222A1
X12_CLAIM_INDEX = "source.x12.claim_index"  # 1-based position of the CLM in its transaction set
FHIR_BUNDLE_ID = "source.fhir.bundle_id"
FHIR_CLAIM_ID = "source.fhir.claim_id"  # the Claim resource's logical id
FHIR_ENTRY_INDEX = "source.fhir.entry_index"  # 0-based position of the Claim in Bundle.entry


class SourceFormat(StrEnum):
    """What a file holds (`--input-format`) and the `source.format` header value of what was made from it."""

    JSON = "json"  # claim.submitted v1 events, one per line (JSONL)
    X12_837P = "x12-837p"
    X12_837I = "x12-837i"
    FHIR_R4 = "fhir-r4"


@dataclass(frozen=True, slots=True)
class ClaimRecord:
    """One claim event: `value` is the claim.submitted v1 JSON (UTF-8), `key` its claim id."""

    value: bytes
    key: bytes | None
    headers: tuple[tuple[str, bytes], ...]
    source_format: SourceFormat
