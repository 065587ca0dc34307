"""FHIR R4 `Claim` resources (alone, or in a `Bundle` with their Patient, Coverage, MedicationAdministration and
body-weight Observation) to claim.submitted v1 documents, read with fhir.resources' R4B models.

R4B's Claim is R4's Claim (the financial resources did not change between 4.0.1 and 4.3.0), and the R4B models
are what fhir.resources 8 maintains for that shape. A resource that does not validate against them, such as a
Claim written for another FHIR version, is refused whole (`fhir_invalid`), naming the fields, never their values.
The field mapping is the README's ("FHIR R4 Claim" section). Fields with no source are left out, never defaulted.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from pydantic import ValidationError

from adapters.errors import ConversionError, FailureCode
from adapters.x12.claims import ICD9_LETTER_CODE_PREFIX

DEFAULT_MAX_BUNDLE_ENTRIES = 5_000
NDC_SYSTEM = "http://hl7.org/fhir/sid/ndc"
NPI_SYSTEM = "http://hl7.org/fhir/sid/us-npi"
BODY_WEIGHT_LOINC = "29463-7"
LOINC_SYSTEM = "http://loinc.org"
ICD10_SYSTEMS = frozenset({"http://hl7.org/fhir/sid/icd-10-cm", "http://hl7.org/fhir/sid/icd-10"})
ICD9_SYSTEMS = frozenset({"http://hl7.org/fhir/sid/icd-9-cm"})
CLAIM_TYPE_SYSTEM = "http://terminology.hl7.org/CodeSystem/claim-type"
# HCPCS Level II and CPT code systems as US senders write them (HL7 terminology, CMS Blue Button, AMA).
PROCEDURE_SYSTEMS = frozenset(
    {
        "https://bluebutton.cms.gov/resources/codesystem/hcpcs",
        "https://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets",
        "http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets",
        "urn:oid:2.16.840.1.113883.6.285",  # HCPCS
        "http://www.ama-assn.org/go/cpt",
        "urn:oid:2.16.840.1.113883.6.12",  # CPT
    }
)
# Source of Payment Typology (PHDSC), the US Core Coverage.type code system: first digit 1 Medicare, 2 Medicaid,
# 5 private health insurance, 6 Blue Cross/Blue Shield. Other categories have no payer type in the contract.
SOURCE_OF_PAYMENT_SYSTEM = "https://nahdo.org/sopt"
PAYER_TYPE_BY_PAYMENT_CATEGORY: Mapping[str, str] = {
    "1": "medicare",
    "2": "medicaid",
    "5": "commercial",
    "6": "commercial",
}
# Body weight in kilograms from the UCUM units Observations use.
_KG_PER_UNIT: Mapping[str, float] = {"kg": 1.0, "g": 0.001, "[lb_av]": 0.45359237}
_MG_PER_UNIT: Mapping[str, float] = {"mg": 1.0, "g": 1000.0, "ug": 0.001}
_EVENT_ID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:claims-worker:fhir-claim:event-id")


@dataclass(frozen=True, slots=True)
class ConvertedFhirClaim:
    """A claim.submitted v1 document (plain JSON types) and the Claim resource it came from."""

    document: dict[str, Any]
    bundle_id: str | None
    claim_resource_id: str | None
    entry_index: int | None


def convert_fhir(data: bytes, *, max_entries: int = DEFAULT_MAX_BUNDLE_ENTRIES) -> list[ConvertedFhirClaim]:
    """Every Claim in a FHIR R4 JSON document (a Claim, or a Bundle of Claims and the resources they reference).

    Raises ConversionError: FHIR_NOT_JSON, FHIR_UNSUPPORTED (another resource type), FHIR_TOO_MANY_ENTRIES (more
    than `max_entries` Bundle entries, checked before any model is built), FHIR_INVALID (fails the R4B model),
    FHIR_NO_CLAIM (a Bundle without a Claim).
    """
    try:
        document = json.loads(data)
    except (ValueError, RecursionError):
        raise ConversionError(FailureCode.FHIR_NOT_JSON, "not a JSON document") from None
    if not isinstance(document, dict):
        raise ConversionError(FailureCode.FHIR_NOT_JSON, "the JSON document is not an object")
    resource_type = document.get("resourceType")
    if resource_type == "Bundle":
        entries = document.get("entry")
        if isinstance(entries, list) and len(entries) > max_entries:
            raise ConversionError(
                FailureCode.FHIR_TOO_MANY_ENTRIES,
                f"the Bundle has {len(entries)} entries, over the limit of {max_entries} (--max-bundle-entries)",
            )
        from fhir.resources.R4B.bundle import Bundle  # noqa: PLC0415 - 0.5 s import, only for FHIR input

        bundle = _validated(Bundle, document, "Bundle")
        resources = [(index, entry.fullUrl, entry.resource) for index, entry in enumerate(bundle.entry or [])]
        claims = [(index, resource) for index, _, resource in resources if _type_of(resource) == "Claim"]
        if not claims:
            raise ConversionError(FailureCode.FHIR_NO_CLAIM, "the Bundle holds no Claim resource")
        index_by_reference = _reference_index(resources)
        return [
            _convert_claim(claim, _Resolver(index_by_reference, claim), bundle.id, index) for index, claim in claims
        ]
    if resource_type == "Claim":
        from fhir.resources.R4B.claim import Claim  # noqa: PLC0415 - 0.5 s import, only for FHIR input

        claim = _validated(Claim, document, "Claim")
        return [_convert_claim(claim, _Resolver({}, claim), None, None)]
    shown = resource_type if isinstance(resource_type, str) and resource_type.isalpha() else "missing"
    raise ConversionError(
        FailureCode.FHIR_UNSUPPORTED,
        f"resourceType {shown[:40]} is not supported; send a Claim or a Bundle holding Claims",
    )


def _validated(model: Any, document: dict[str, Any], kind: str) -> Any:
    try:
        return model.model_validate(document)
    except ValidationError as error:
        problems = error.errors(include_input=False, include_url=False, include_context=False)
        fields = ", ".join(
            f"{'.'.join(str(part) for part in problem['loc'])} ({problem['type']})" for problem in problems[:10]
        )
        more = f" and {len(problems) - 10} more" if len(problems) > 10 else ""
        raise ConversionError(
            FailureCode.FHIR_INVALID, f"not a valid FHIR R4 {kind} (R4B model): {fields}{more}"
        ) from None
    except (ValueError, TypeError, RecursionError):
        raise ConversionError(FailureCode.FHIR_INVALID, f"not a valid FHIR R4 {kind} (R4B model)") from None


def _type_of(resource: Any) -> str | None:
    if resource is None:
        return None
    name: str = resource.get_resource_type()
    return name


def _reference_index(resources: Sequence[tuple[int, str | None, Any]]) -> dict[str, Any]:
    """Every way a Bundle entry can be referenced: its fullUrl, `Type/id`, and the fullUrl's `Type/id` tail."""
    index: dict[str, Any] = {}
    for _, full_url, resource in resources:
        if resource is None:
            continue
        if full_url:
            index[full_url] = resource
            tail = "/".join(full_url.rstrip("/").split("/")[-2:])
            index.setdefault(tail, resource)
        if resource.id:
            index.setdefault(f"{resource.get_resource_type()}/{resource.id}", resource)
    return index


class _Resolver:
    """Resolves references from one Claim: to Bundle entries, or to the Claim's contained resources (`#id`)."""

    def __init__(self, entries: dict[str, Any], claim: Any) -> None:
        self._entries = entries
        self._contained = {f"#{resource.id}": resource for resource in (claim.contained or []) if resource.id}
        self.resources = [*entries.values(), *self._contained.values()]

    def resolve(self, reference: Any, kind: str) -> Any:
        if reference is None or not reference.reference:
            return None
        target = self._contained.get(reference.reference) or self._entries.get(reference.reference)
        return target if _type_of(target) == kind else None

    def of_type(self, kind: str) -> Iterator[Any]:
        seen: set[int] = set()
        for resource in self.resources:
            if _type_of(resource) == kind and id(resource) not in seen:
                seen.add(id(resource))
                yield resource


def _convert_claim(
    claim: Any, resolver: _Resolver, bundle_id: str | None, entry_index: int | None
) -> ConvertedFhirClaim:
    claim_id = next((identifier.value for identifier in claim.identifier or [] if identifier.value), None) or claim.id
    document: dict[str, Any] = {"schema_version": 1}
    version = claim.meta.versionId if claim.meta is not None else None
    name = "|".join(str(part or "") for part in (bundle_id, entry_index, claim.id, version, claim_id))
    document["event_id"] = f"fhir-{uuid.uuid5(_EVENT_ID_NAMESPACE, name)}"
    if claim_id:
        document["claim_id"] = claim_id
    claim_type = _code(claim.type, CLAIM_TYPE_SYSTEM)
    if claim_type:
        # Only professional and institutional exist in the contract; another type (oral, vision, pharmacy) is sent
        # as it is, so that the contract refuses it rather than the claim passing for professional.
        document["claim_type"] = claim_type
    type_of_bill = _type_of_bill(claim)
    if type_of_bill:
        document["type_of_bill"] = type_of_bill
    if claim.created is not None:
        document["submitted_on"] = _date_text(claim.created)
    coverage, insurance = _focal_coverage(claim, resolver)
    document["payer"] = _payer(claim, coverage, resolver)
    patient = resolver.resolve(claim.patient, "Patient")
    document["patient"] = _patient(patient, coverage, resolver)
    billing_npi = _npi_of(claim.provider, resolver)
    if billing_npi:
        document["billing_provider"] = {"npi": billing_npi}
    rendering_npi = _rendering_npi(claim, resolver)
    if rendering_npi:
        document["rendering_provider"] = {"npi": rendering_npi}
    place = next(
        (_code(item.locationCodeableConcept, None) for item in claim.item or [] if item.locationCodeableConcept), None
    )
    if place:
        document["place_of_service"] = place
    diagnoses, position_by_sequence = _diagnoses(claim)
    if diagnoses:
        document["diagnoses"] = diagnoses
    if insurance is not None and insurance.preAuthRef:
        document["prior_authorization"] = {"number": insurance.preAuthRef[0]}
    document["lines"] = [_line(item, position_by_sequence, claim, resolver) for item in claim.item or []]
    return ConvertedFhirClaim(document, bundle_id, claim.id, entry_index)


def _code(concept: Any, system: str | None) -> str | None:
    """The code of the first coding (of `system`, when given) of a CodeableConcept."""
    if concept is None:
        return None
    for coding in concept.coding or []:
        if coding.code and (system is None or coding.system == system):
            code: str = coding.code
            return code
    return None


def _date_text(value: Any) -> str:
    if isinstance(value, dt.datetime):
        return value.date().isoformat()
    return str(value.isoformat()) if isinstance(value, dt.date) else str(value)[:10]


def _type_of_bill(claim: Any) -> str | None:
    """Institutional: supportingInfo of category `typeofbill` (the CARIN Blue Button convention)."""
    for info in claim.supportingInfo or []:
        categories = [coding.code for coding in (info.category.coding or [])] if info.category else []
        if "typeofbill" in categories:
            return _code(info.code, None)
    return None


def _focal_coverage(claim: Any, resolver: _Resolver) -> tuple[Any, Any]:
    insurances = list(claim.insurance or [])
    insurance = next((item for item in insurances if item.focal), insurances[0] if insurances else None)
    if insurance is None:
        return None, None
    return resolver.resolve(insurance.coverage, "Coverage"), insurance


def _payer(claim: Any, coverage: Any, resolver: _Resolver) -> dict[str, Any]:
    payer: dict[str, Any] = {}
    reference = claim.insurer or (coverage.payor[0] if coverage is not None and coverage.payor else None)
    organization = resolver.resolve(reference, "Organization") if reference is not None else None
    identifier = None
    if reference is not None and reference.identifier is not None and reference.identifier.value:
        identifier = reference.identifier.value
    elif organization is not None:
        identifier = next((item.value for item in organization.identifier or [] if item.value), None) or organization.id
    if identifier:
        payer["id"] = identifier
    if coverage is not None and coverage.type is not None:
        category = (_code(coverage.type, SOURCE_OF_PAYMENT_SYSTEM) or "")[:1]
        if category in PAYER_TYPE_BY_PAYMENT_CATEGORY:
            payer["type"] = PAYER_TYPE_BY_PAYMENT_CATEGORY[category]
    name = (organization.name if organization is not None else None) or (reference.display if reference else None)
    if name:
        payer["name"] = name
    return payer


def _patient(patient: Any, coverage: Any, resolver: _Resolver) -> dict[str, Any]:
    values: dict[str, Any] = {}
    member_id = None
    if coverage is not None:
        member_id = coverage.subscriberId or next(
            (item.value for item in coverage.identifier or [] if item.value), None
        )
    if member_id is None and patient is not None:
        member_id = next(
            (
                item.value
                for item in patient.identifier or []
                if item.value and item.type is not None and _code(item.type, None) in ("MB", "MC", "SN")
            ),
            None,
        )
    if member_id:
        values["member_id"] = member_id
    if patient is not None and patient.birthDate is not None:
        values["birth_date"] = _date_text(patient.birthDate)
    weight = _body_weight_kg(patient, resolver)
    if weight is not None:
        values["weight_kg"] = weight
    return values


def _body_weight_kg(patient: Any, resolver: _Resolver) -> float | None:
    """The latest body weight (LOINC 29463-7) Observation of the patient, in kilograms."""
    latest: tuple[str, float] | None = None
    for observation in resolver.of_type("Observation"):
        if _code(observation.code, LOINC_SYSTEM) != BODY_WEIGHT_LOINC or observation.valueQuantity is None:
            continue
        if patient is not None and observation.subject is not None:
            subject = resolver.resolve(observation.subject, "Patient")
            if subject is not None and subject is not patient:
                continue
        quantity = observation.valueQuantity
        factor = _KG_PER_UNIT.get(quantity.code or quantity.unit or "")
        if factor is None or quantity.value is None:
            continue
        when = str(observation.effectiveDateTime or "")
        kilograms = round(float(quantity.value) * factor, 3)
        if latest is None or when >= latest[0]:
            latest = (when, kilograms)
    return latest[1] if latest is not None else None


def _npi_of(reference: Any, resolver: _Resolver) -> str | None:
    if reference is None:
        return None
    if reference.identifier is not None and reference.identifier.system == NPI_SYSTEM and reference.identifier.value:
        npi: str = reference.identifier.value
        return npi
    for kind in ("Organization", "Practitioner", "PractitionerRole"):
        target = resolver.resolve(reference, kind)
        if target is None:
            continue
        if kind == "PractitionerRole":
            return _npi_of(target.practitioner, resolver)
        found = next((item.value for item in target.identifier or [] if item.system == NPI_SYSTEM and item.value), None)
        if found:
            return str(found)
    return None


def _rendering_npi(claim: Any, resolver: _Resolver) -> str | None:
    for member in claim.careTeam or []:
        roles = [coding.code for coding in (member.role.coding or [])] if member.role else []
        if "rendering" in roles or "primary" in roles:
            npi = _npi_of(member.provider, resolver)
            if npi:
                return npi
    return None


def _diagnoses(claim: Any) -> tuple[list[str], dict[int, int]]:
    codes: list[str] = []
    position_by_sequence: dict[int, int] = {}
    for diagnosis in sorted(claim.diagnosis or [], key=lambda item: item.sequence):
        concept = diagnosis.diagnosisCodeableConcept
        coding = next((coding for coding in (concept.coding or []) if coding.code), None) if concept else None
        if coding is None:
            continue
        code = coding.code
        if coding.system in ICD9_SYSTEMS and not code[:1].isdigit():
            code = ICD9_LETTER_CODE_PREFIX + code  # see adapters.x12.claims: never pass ICD-9 for ICD-10-CM
        codes.append(code)
        position_by_sequence[diagnosis.sequence] = len(codes)
    return codes, position_by_sequence


def _line(item: Any, position_by_sequence: dict[int, int], claim: Any, resolver: _Resolver) -> dict[str, Any]:
    line: dict[str, Any] = {"line_number": item.sequence}
    if item.servicedDate is not None:
        line["service_date"] = _date_text(item.servicedDate)
    elif item.servicedPeriod is not None and item.servicedPeriod.start is not None:
        line["service_date"] = _date_text(item.servicedPeriod.start)
    procedure = _procedure_code(item.productOrService)
    if procedure:
        line["procedure_code"] = procedure
    line["modifiers"] = [code for code in (_code(modifier, None) for modifier in item.modifier or []) if code]
    if item.quantity is not None and item.quantity.value is not None:
        line["units"] = float(item.quantity.value)
    if item.net is not None and item.net.value is not None:
        line["charge"] = _decimal_text(item.net.value)
    pointers = [
        position_by_sequence[sequence] for sequence in item.diagnosisSequence or [] if sequence in position_by_sequence
    ]
    if pointers:
        line["diagnosis_pointers"] = pointers
    ndc = _ndc(item)
    if ndc:
        line["ndc"] = ndc
    administration = _administration(item, claim, resolver)
    if administration:
        line["administration"] = administration
    return line


def _procedure_code(concept: Any) -> str | None:
    if concept is None:
        return None
    codings = [coding for coding in concept.coding or [] if coding.code]
    preferred = next((coding for coding in codings if coding.system in PROCEDURE_SYSTEMS), None)
    chosen = preferred or (codings[0] if codings else None)
    return chosen.code if chosen is not None else None


def _decimal_text(value: Decimal | float | int) -> str:
    return format(Decimal(str(value)), "f")


def _ndc(item: Any) -> dict[str, Any]:
    for detail in item.detail or []:
        code = _code(detail.productOrService, NDC_SYSTEM)
        if not code:
            continue
        ndc: dict[str, Any] = {"code": code}
        quantity = detail.quantity
        if quantity is not None and quantity.value is not None:
            ndc["quantity"] = float(quantity.value)
        unit = (quantity.code or quantity.unit) if quantity is not None else None
        if unit:
            ndc["unit"] = unit
        return ndc
    return {}


def _administration(item: Any, claim: Any, resolver: _Resolver) -> dict[str, Any]:
    """From the MedicationAdministration the item names through `informationSequence` -> `supportingInfo`."""
    sequences = set(item.informationSequence or [])
    administration = None
    for info in claim.supportingInfo or []:
        if info.sequence in sequences and info.valueReference is not None:
            administration = resolver.resolve(info.valueReference, "MedicationAdministration")
            if administration is not None:
                break
    if administration is None:
        return {}
    values: dict[str, Any] = {}
    medication = administration.medicationCodeableConcept
    if medication is not None:
        drug = medication.text or next((coding.display for coding in medication.coding or [] if coding.display), None)
        if drug:
            values["drug"] = drug
    dosage = administration.dosage
    if dosage is not None and dosage.dose is not None:
        milligrams = _milligrams(dosage.dose)
        if milligrams is not None:
            values["administered_mg"] = milligrams
    ordered = _ordered_dose_mg(administration, resolver)
    if ordered is not None:
        values["dose_mg"] = ordered
    period = administration.effectivePeriod
    if period is not None:
        if period.start is not None and isinstance(period.start, dt.datetime) and period.start.tzinfo:
            values["started_at"] = period.start.isoformat()
        if period.end is not None and isinstance(period.end, dt.datetime) and period.end.tzinfo:
            values["ended_at"] = period.end.isoformat()
    return values


def _ordered_dose_mg(administration: Any, resolver: _Resolver) -> float | None:
    """The ordered dose: the MedicationRequest the administration names (`request`), when the Bundle has it."""
    request = resolver.resolve(administration.request, "MedicationRequest")
    if request is None:
        return None
    for instruction in request.dosageInstruction or []:
        for dose_and_rate in instruction.doseAndRate or []:
            if dose_and_rate.doseQuantity is not None:
                return _milligrams(dose_and_rate.doseQuantity)
    return None


def _milligrams(quantity: Any) -> float | None:
    factor = _MG_PER_UNIT.get(quantity.code or quantity.unit or "")
    if factor is None or quantity.value is None:
        return None
    return round(float(quantity.value) * factor, 6)
