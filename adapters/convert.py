"""An input file's bytes to claim event records: detect the format, convert, attach the source headers.

    conversion = convert_bytes(data, InputFormat.AUTO, maps=X12Maps())
    for record in conversion.records: ...

JSON (claim.submitted v1 JSONL) is not converted here: callers stream it line by line as they always have;
`detect_format` tells them when a file is JSONL.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum

from adapters import records as headers
from adapters.errors import ConversionError, FailureCode
from adapters.fhir import DEFAULT_MAX_BUNDLE_ENTRIES, ConvertedFhirClaim, convert_fhir
from adapters.records import ClaimRecord, SourceFormat
from adapters.x12.claims import ClaimBuilder, ConvertedX12Claim
from adapters.x12.maps import X12Maps
from adapters.x12.reader import X12Report, read_interchanges

DEFAULT_MAX_INPUT_BYTES = 32 * 1024 * 1024
DETECTION_BYTES = 64 * 1024  # how much of a file `detect_format` needs to see
_BOM = b"\xef\xbb\xbf"


class InputFormat(StrEnum):
    """`--input-format`: what a file holds; `auto` looks at its content."""

    AUTO = "auto"
    JSON = "json"
    X12 = "x12"
    FHIR = "fhir"


def detect_format(head: bytes) -> InputFormat:
    """The format of a file from its first bytes (up to `DETECTION_BYTES`): an ISA segment is X12; a JSON object
    with a top-level `resourceType` is FHIR; anything else is JSONL, whose reader reports what is not a claim.
    """
    text = head.removeprefix(_BOM).lstrip()
    if text.startswith(b"ISA"):
        return InputFormat.X12
    if not text.startswith(b"{"):
        return InputFormat.JSON
    first_line = text.split(b"\n", 1)[0]
    try:
        document = json.loads(first_line)
    except (ValueError, RecursionError):
        # Not one object per line: a pretty-printed document. A FHIR resource names its type near the top.
        return InputFormat.FHIR if b'"resourceType"' in text else InputFormat.JSON
    return InputFormat.FHIR if isinstance(document, dict) and "resourceType" in document else InputFormat.JSON


@dataclass(frozen=True, slots=True)
class Conversion:
    """The claim records made from one file; for X12 also the validation report (errors, 999)."""

    records: tuple[ClaimRecord, ...]
    x12_report: X12Report | None = None


def convert_bytes(
    data: bytes,
    input_format: InputFormat,
    *,
    maps: X12Maps | None = None,
    max_bundle_entries: int = DEFAULT_MAX_BUNDLE_ENTRIES,
    keep_invalid_x12: bool = False,
) -> Conversion:
    """Convert an X12 or FHIR file (`input_format` AUTO, X12 or FHIR) to claim records.

    An X12 file that breaks the implementation guide gives a Conversion with no records (its report says why)
    unless `keep_invalid_x12`, which keeps the claims read from the segments the guide places. `maps` are the
    X12 maps to reuse across files (default: a fresh `X12Maps`, parsed again).
    Raises ConversionError for input that is not a convertible file (see `FailureCode`).
    """
    resolved = detect_format(data[:DETECTION_BYTES]) if input_format is InputFormat.AUTO else input_format
    if resolved is InputFormat.X12:
        return _convert_x12(data, maps or X12Maps(), keep_invalid=keep_invalid_x12)
    if resolved is InputFormat.FHIR:
        return Conversion(tuple(_fhir_record(claim) for claim in convert_fhir(data, max_entries=max_bundle_entries)))
    raise ConversionError(
        FailureCode.UNKNOWN_FORMAT, "the file holds neither an X12 interchange (ISA) nor a FHIR resource"
    )


def _convert_x12(data: bytes, maps: X12Maps, *, keep_invalid: bool) -> Conversion:
    try:
        text = data.removeprefix(_BOM).decode("utf-8").lstrip()
    except UnicodeDecodeError as error:
        raise ConversionError(FailureCode.NOT_UTF8, f"not UTF-8 text: invalid byte at position {error.start}") from None
    builder = ClaimBuilder()
    report = read_interchanges(text, maps, builder.feed)
    if not report.valid and not keep_invalid:
        return Conversion((), report)
    return Conversion(tuple(_x12_record(claim) for claim in builder.claims), report)


def _json_bytes(document: dict[str, object]) -> bytes:
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _key(document: dict[str, object]) -> bytes | None:
    claim_id = document.get("claim_id")
    return claim_id.encode("utf-8") if isinstance(claim_id, str) and claim_id else None


def _ascii(text: str) -> bytes:
    return text.encode("ascii", "replace")


def _x12_record(claim: ConvertedX12Claim) -> ClaimRecord:
    envelope = claim.envelope
    return ClaimRecord(
        value=_json_bytes(claim.document),
        key=_key(claim.document),
        headers=(
            (headers.SOURCE_FORMAT, _ascii(envelope.source_format.value)),
            (headers.X12_VERSION, _ascii(envelope.version)),
            (headers.X12_SENDER_ID, _ascii(envelope.sender_id)),
            (headers.X12_INTERCHANGE_CONTROL_NUMBER, _ascii(envelope.interchange_control_number)),
            (headers.X12_GROUP_CONTROL_NUMBER, _ascii(envelope.group_control_number)),
            (headers.X12_TRANSACTION_CONTROL_NUMBER, _ascii(envelope.transaction_control_number)),
            (headers.X12_CLAIM_INDEX, str(claim.claim_index).encode()),
        ),
        source_format=envelope.source_format,
    )


def _fhir_record(claim: ConvertedFhirClaim) -> ClaimRecord:
    pairs: list[tuple[str, bytes]] = [(headers.SOURCE_FORMAT, SourceFormat.FHIR_R4.value.encode())]
    if claim.bundle_id:
        pairs.append((headers.FHIR_BUNDLE_ID, _ascii(claim.bundle_id)))
    if claim.claim_resource_id:
        pairs.append((headers.FHIR_CLAIM_ID, _ascii(claim.claim_resource_id)))
    if claim.entry_index is not None:
        pairs.append((headers.FHIR_ENTRY_INDEX, str(claim.entry_index).encode()))
    return ClaimRecord(
        value=_json_bytes(claim.document),
        key=_key(claim.document),
        headers=tuple(pairs),
        source_format=SourceFormat.FHIR_R4,
    )
