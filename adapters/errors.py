"""Why an input file could not be converted: a stable code and a message that never quotes the input.

Input files carry patient data (names, member ids, birth dates), so messages name segments, elements, positions
and codes only, never a value read from the file.
"""

from __future__ import annotations

from enum import StrEnum


class FailureCode(StrEnum):
    """Stable codes of `ConversionError` (what `convert`, `validate` and `publish` print before exiting 2)."""

    TOO_LARGE = "too_large"  # over --max-input-bytes
    NOT_UTF8 = "not_utf8"
    UNKNOWN_FORMAT = "unknown_format"  # --input-format auto found no ISA segment, no resourceType, no JSON object
    X12_UNREADABLE = "x12_unreadable"  # no valid ISA header: wrong length, separators, or not X12 at all
    X12_UNSUPPORTED = "x12_unsupported"  # an X12 version or transaction this worker has no map for (only 837P/837I)
    X12_INVALID = "x12_invalid"  # breaks the implementation guide: see the 999 errors
    FHIR_NOT_JSON = "fhir_not_json"
    FHIR_UNSUPPORTED = "fhir_unsupported"  # a resource that is neither a Claim nor a Bundle
    FHIR_INVALID = "fhir_invalid"  # not a valid R4 (R4B model) resource, e.g. a Claim of another FHIR version
    FHIR_TOO_MANY_ENTRIES = "fhir_too_many_entries"  # a Bundle over --max-bundle-entries
    FHIR_NO_CLAIM = "fhir_no_claim"  # a Bundle without a Claim entry


class ConversionError(Exception):
    """An input file that cannot become claim events. `code` is stable; `message` never quotes the input."""

    def __init__(self, code: FailureCode, message: str) -> None:
        super().__init__(f"{code.value}: {message}")
        self.code = code
        self.message = message
