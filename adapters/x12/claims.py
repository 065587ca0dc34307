"""837P/837I segments to claim.submitted v1 documents: one per CLM (loop 2300), its lines from loop 2400.

The field mapping is the README's ("X12 837P and 837I" section). A field with no source in the file is left out,
never defaulted: the contract then reports it (a `schema` finding) or the rules list the check as not evaluated.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from adapters.records import SourceFormat
from adapters.x12.reader import Envelope, MatchedSegment

# SBR09 claim filing indicator code (X12 element 1032) -> claim.submitted payer.type. Codes not listed (11 other
# non-federal, 16 HMO Medicare risk, 17 dental, AM auto, CH TRICARE, DS disability, FI federal employees, LM
# liability, OF other federal, TV title V, VA veterans, WC workers' compensation, ZZ) have no payer type in the
# contract: payer.type is left out and the claim gets a schema finding rather than a guessed policy.
PAYER_TYPE_BY_FILING_INDICATOR: Mapping[str, str] = {
    "MA": "medicare",  # Medicare Part A
    "MB": "medicare",  # Medicare Part B
    "MC": "medicaid",
    "CI": "commercial",  # commercial insurance company
    "BL": "commercial",  # Blue Cross/Blue Shield
    "HM": "commercial",  # health maintenance organization
    "12": "commercial",  # preferred provider organization (PPO)
    "13": "commercial",  # point of service (POS)
    "14": "commercial",  # exclusive provider organization (EPO)
    "15": "commercial",  # indemnity insurance
}

# HI qualifiers of the diagnoses lines point at (SV107): ICD-10-CM principal and other (ABK, ABF) and their ICD-9-CM
# forms (BK, BF), kept in file order so that the pointers still count the same positions.
ICD10_QUALIFIERS = frozenset({"ABK", "ABF"})
ICD9_QUALIFIERS = frozenset({"BK", "BF"})
# An ICD-9-CM code is not an ICD-10-CM code and must never pass for one. Numeric ICD-9 codes cannot (every
# ICD-10-CM code starts with a letter), so they go through unchanged and the rules report them
# (CLAIM.DIAGNOSIS.UNKNOWN_CODE). ICD-9 E and V codes can look like real ICD-10-CM codes (ICD-9 E888.9 reads as
# ICD-10-CM E88.89), so they get this prefix, which no ICD-10-CM code has.
ICD9_LETTER_CODE_PREFIX = "ICD9"

_EVENT_ID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:claims-worker:x12-837:event-id")


@dataclass(slots=True)
class ConvertedX12Claim:
    """A claim.submitted v1 document (plain JSON types) and where in the interchange it came from."""

    document: dict[str, Any]
    envelope: Envelope
    claim_index: int  # 1-based position of the CLM in its transaction set


def event_id_for(envelope: Envelope, claim_index: int, claim_id: str) -> str:
    """Deterministic: the same interchange, group, transaction, position and CLM01 give the same event id."""
    name = "|".join(
        (
            envelope.sender_id,
            envelope.interchange_control_number,
            envelope.group_control_number,
            envelope.transaction_control_number,
            str(claim_index),
            claim_id,
        )
    )
    return f"x12-{uuid.uuid5(_EVENT_ID_NAMESPACE, name)}"


@dataclass(slots=True)
class _Line:
    values: dict[str, Any] = field(default_factory=dict)
    ndc: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class _Claim:
    envelope: Envelope
    index: int
    values: dict[str, Any]
    diagnoses: list[str] = field(default_factory=list)
    lines: list[_Line] = field(default_factory=list)
    statement_from: str | None = None


class ClaimBuilder:
    """Feed it every matched segment of an interchange in order (`feed`), then take `claims`."""

    __slots__ = (
        "_billing_npi",
        "_claim",
        "_claim_index",
        "_created_on",
        "_member",
        "_patient_birth_date",
        "_payer",
        "_subscriber_birth_date",
        "claims",
    )

    def __init__(self) -> None:
        self.claims: list[ConvertedX12Claim] = []
        self._claim: _Claim | None = None
        self._reset_transaction()

    def __repr__(self) -> str:
        return f"<ClaimBuilder claims={len(self.claims)} open={self._claim is not None}>"

    def _reset_transaction(self) -> None:
        self._created_on: str | None = None
        self._claim_index = 0
        self._billing_npi: str | None = None
        self._reset_subscriber()

    def _reset_subscriber(self) -> None:
        self._member: str | None = None
        self._subscriber_birth_date: str | None = None
        self._payer: dict[str, Any] = {}
        self._patient_birth_date: str | None = None

    def feed(self, segment: MatchedSegment) -> None:  # noqa: PLR0912 - one branch per segment the mapping reads
        """Take one segment (in file order)."""
        segment_id = segment.segment_id
        loop = segment.loops[-1] if segment.loops else ""
        if segment_id == "ST":
            self._finish_claim()
            self._reset_transaction()
        elif segment_id == "SE":
            self._finish_claim()
        elif segment_id == "BHT":
            self._created_on = _date(segment.value(4))
        elif segment_id == "HL":
            self._finish_claim()
            level = segment.value(3)
            if level == "20":
                self._billing_npi = None
                self._reset_subscriber()
            elif level == "22":
                self._reset_subscriber()
            elif level == "23":
                self._patient_birth_date = None
        elif segment_id == "NM1":
            self._name(segment, loop)
        elif segment_id == "SBR" and loop == "2000B":
            payer_type = PAYER_TYPE_BY_FILING_INDICATOR.get(segment.value(9))
            if payer_type is not None:
                self._payer["type"] = payer_type
        elif segment_id == "DMG" and segment.value(1) == "D8":
            if loop == "2010BA":
                self._subscriber_birth_date = _date(segment.value(2))
            elif loop == "2010CA":
                self._patient_birth_date = _date(segment.value(2))
        elif segment_id == "CLM" and loop == "2300":
            self._start_claim(segment)
        elif self._claim is not None:
            self._claim_segment(segment, loop)

    def _name(self, segment: MatchedSegment, loop: str) -> None:
        entity = segment.value(1)
        identifier = segment.value(9)
        if loop == "2010AA" and entity == "85" and segment.value(8) == "XX" and identifier:
            self._billing_npi = identifier
        elif loop == "2010BA" and entity == "IL" and identifier:
            self._member = identifier
        elif loop == "2010BB" and entity == "PR":
            if identifier:
                self._payer["id"] = identifier
            if segment.value(3):
                self._payer["name"] = segment.value(3)
        elif (
            self._claim is not None
            and loop.startswith("2310")
            and entity == "82"
            and segment.value(8) == "XX"
            and identifier
        ):
            self._claim.values["rendering_provider"] = {"npi": identifier}

    def _start_claim(self, segment: MatchedSegment) -> None:
        self._finish_claim()
        envelope = segment.envelope
        if envelope is None:
            return
        self._claim_index += 1
        claim_id = segment.value(1)
        institutional = envelope.source_format is SourceFormat.X12_837I
        values: dict[str, Any] = {
            "schema_version": 1,
            "event_id": event_id_for(envelope, self._claim_index, claim_id),
            "claim_id": claim_id,
            "claim_type": "institutional" if institutional else "professional",
        }
        facility, _, frequency = (*segment.components(5), "", "", "")[:3]
        if frequency:
            values["frequency_code"] = frequency
        if institutional:
            if facility and frequency:
                values["type_of_bill"] = facility + frequency
        elif facility:
            values["place_of_service"] = facility
        self._claim = _Claim(envelope=envelope, index=self._claim_index, values=values)

    def _claim_segment(self, segment: MatchedSegment, loop: str) -> None:
        claim = self._claim
        if claim is None:
            return
        if loop == "2300":
            _claim_level(segment, claim)
        elif loop == "2400":
            _line_level(segment, claim)
        elif loop == "2410" and claim.lines:
            _drug_identification(segment, claim.lines[-1])

    def _finish_claim(self) -> None:
        claim = self._claim
        if claim is None:
            return
        self._claim = None
        document = claim.values
        if self._created_on:
            document["submitted_on"] = self._created_on
        document["payer"] = dict(self._payer)
        patient: dict[str, Any] = {}
        if self._member:
            patient["member_id"] = self._member
        birth_date = self._patient_birth_date or self._subscriber_birth_date
        if birth_date:
            patient["birth_date"] = birth_date
        document["patient"] = patient
        if self._billing_npi:
            document["billing_provider"] = {"npi": self._billing_npi}
        if claim.diagnoses:
            document["diagnoses"] = claim.diagnoses
        lines = []
        for line in claim.lines:
            values = line.values
            if "service_date" not in values and claim.statement_from:
                # 837I lines may omit DTP*472; the claim's statement period (DTP*434) then dates them.
                values["service_date"] = claim.statement_from
            if line.ndc:
                values["ndc"] = line.ndc
            lines.append(values)
        document["lines"] = lines
        # Keys in a fixed order, so that converting the same file twice gives the same bytes.
        ordered = {key: document[key] for key in _KEY_ORDER if key in document}
        self.claims.append(ConvertedX12Claim(ordered, claim.envelope, claim.index))


_KEY_ORDER = (
    "schema_version",
    "event_id",
    "claim_id",
    "claim_type",
    "frequency_code",
    "original_claim_id",
    "type_of_bill",
    "submitted_on",
    "payer",
    "patient",
    "billing_provider",
    "rendering_provider",
    "place_of_service",
    "diagnoses",
    "prior_authorization",
    "lines",
)


def _claim_level(segment: MatchedSegment, claim: _Claim) -> None:
    """Loop 2300: REF*G1 prior authorization, REF*F8 original claim, HI diagnoses, DTP*434 statement dates."""
    segment_id = segment.segment_id
    if segment_id == "REF" and segment.value(2):
        if segment.value(1) == "G1":
            claim.values["prior_authorization"] = {"number": segment.value(2)}
        elif segment.value(1) == "F8":
            claim.values["original_claim_id"] = segment.value(2)
    elif segment_id == "HI":
        claim.diagnoses.extend(_diagnoses(segment))
    elif segment_id == "DTP" and segment.value(1) == "434":
        claim.statement_from = _date(segment.value(3).split("-")[0])


def _line_level(segment: MatchedSegment, claim: _Claim) -> None:
    """Loop 2400: LX line number, SV1/SV2 service, DTP*472 service date (the from-date of a range)."""
    segment_id = segment.segment_id
    if segment_id == "LX":
        line = _Line()
        if segment.value(1).isdigit():
            line.values["line_number"] = int(segment.value(1))
        claim.lines.append(line)
    elif claim.lines and segment_id in ("SV1", "SV2"):
        _service(segment, claim.lines[-1])
    elif claim.lines and segment_id == "DTP" and segment.value(1) == "472":
        service_date = _date(segment.value(3).split("-")[0])
        if service_date:
            claim.lines[-1].values["service_date"] = service_date


def _drug_identification(segment: MatchedSegment, line: _Line) -> None:
    """Loop 2410: LIN*N4 NDC (LIN03), CTP04 quantity and CTP05-1 unit."""
    if segment.segment_id == "LIN" and segment.value(2) == "N4" and segment.value(3):
        line.ndc["code"] = segment.value(3)
    elif segment.segment_id == "CTP":
        quantity = _number(segment.value(4))
        if quantity is not None:
            line.ndc["quantity"] = quantity
        if segment.value(5):
            line.ndc["unit"] = segment.value(5)


def _service(segment: MatchedSegment, line: _Line) -> None:
    """SV1 (837P: SV101 procedure, SV102 charge, SV104 units, SV107 pointers) or SV2 (837I: SV202, SV203, SV205)."""
    professional = segment.segment_id == "SV1"
    procedure = segment.components(1 if professional else 2)
    charge_at, units_at = (2, 4) if professional else (3, 5)
    # Only HCPCS/CPT ("HC"): another qualifier's code (e.g. ER jurisdiction-specific) is not a procedure_code.
    if len(procedure) >= 2 and procedure[0] == "HC" and procedure[1]:
        line.values["procedure_code"] = procedure[1]
        line.values["modifiers"] = [modifier for modifier in procedure[2:6] if modifier]
    charge = segment.value(charge_at)
    if _number(charge) is not None:
        line.values["charge"] = charge
    units = _number(segment.value(units_at))
    if units is not None:
        line.values["units"] = units
    if professional:
        pointers = [int(pointer) for pointer in segment.components(7) if pointer.isdigit()]
        if pointers:
            line.values["diagnosis_pointers"] = pointers


def _diagnoses(segment: MatchedSegment) -> list[str]:
    found = []
    for position in range(1, segment.element_count + 1):
        qualifier, code = (*segment.components(position), "", "")[:2]
        if not code:
            continue
        if qualifier in ICD10_QUALIFIERS:
            found.append(code)
        elif qualifier in ICD9_QUALIFIERS:
            found.append(code if code[:1].isdigit() else ICD9_LETTER_CODE_PREFIX + code)
    return found


def _date(text: str) -> str | None:
    """CCYYMMDD as ISO 8601 (YYYY-MM-DD); None for anything else (the contract then reports the missing date)."""
    if len(text) == 8 and text.isdigit():
        return f"{text[:4]}-{text[4:6]}-{text[6:]}"
    return None


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None
