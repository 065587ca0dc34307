"""Typed, frozen models of the policy files under `rules/policy/` (and of a user payer policy file).

These models only describe and validate the files; `rules.loading` turns them into the lookup tables the rules
read (`rules.policy_tables.Policy`). Validation is strict (the YAML is validated in pydantic's JSON mode, so dates and
enum values are written as text): a value of the wrong type (an unquoted place of service, a number for a code)
or an unknown key is an error, never silently coerced or ignored.
"""

from __future__ import annotations

import datetime as dt
import re
from types import MappingProxyType
from typing import TYPE_CHECKING, Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, create_model, field_validator, model_validator

from schemas.claim import PayerType
from schemas.verdict import Category, GroupCode, Severity

_CONFIG = ConfigDict(strict=True, extra="forbid", frozen=True)

HcpcsCode = Annotated[str, StringConstraints(pattern=r"^[A-Z0-9][0-9]{4}$")]
NdcCode = Annotated[str, StringConstraints(pattern=r"^[0-9]{5}-[0-9]{4}-[0-9]{2}$")]
PlaceOfService = Annotated[str, StringConstraints(pattern=r"^[0-9]{2}$")]
Modifier = Annotated[str, StringConstraints(pattern=r"^[A-Z0-9]{2}$")]
IcdPrefix = Annotated[str, StringConstraints(pattern=r"^[A-Z][0-9][0-9A-Z](\.[0-9A-Z]{1,4})?$")]
PositiveMg = Annotated[float, Field(gt=0)]
Confidence = Literal["H", "M", "L"]
CodeRange = tuple[Annotated[int, Field(ge=0, le=99999)], Annotated[int, Field(ge=0, le=99999)]]


def _check_range(value: CodeRange) -> CodeRange:
    if value[0] > value[1]:
        raise ValueError(f"range {value[0]}-{value[1]} is empty")
    return value


# ------------------------------------------------------------------------------------------------ codes.yaml


class CodeEntry(BaseModel):
    """A specific HCPCS drug code of the similar-codes table."""

    model_config = _CONFIG

    code: HcpcsCode
    descriptor: str
    unit_mg: PositiveMg
    effective_from: dt.date | None
    drug_names: Annotated[list[Annotated[str, StringConstraints(min_length=1)]], Field(min_length=1)]
    ndcs: list[NdcCode]
    source: str


class NocCode(BaseModel):
    """A not-otherwise-classified code (billing it when a specific code exists draws CARC 189)."""

    model_config = _CONFIG

    code: HcpcsCode
    descriptor: str
    source: str


class UnitSizeNeighbour(BaseModel):
    """A code outside the crosswalk whose unit size explains a likely unit-size mix-up."""

    model_config = _CONFIG

    code: HcpcsCode
    drug: str
    unit_mg: PositiveMg


class CodesFile(BaseModel):
    model_config = _CONFIG

    codes: Annotated[list[CodeEntry], Field(min_length=1)]
    noc_codes: list[NocCode]
    unit_size_neighbours: list[UnitSizeNeighbour]

    @model_validator(mode="after")
    def _codes_unique(self) -> CodesFile:
        all_codes = [c.code for c in self.codes] + [c.code for c in self.noc_codes]
        all_codes += [c.code for c in self.unit_size_neighbours]
        duplicates = sorted({code for code in all_codes if all_codes.count(code) > 1})
        if duplicates:
            raise ValueError(f"codes listed more than once: {', '.join(duplicates)}")
        return self


# --------------------------------------------------------------------------------------------- profiles.yaml


class Indication(BaseModel):
    model_config = _CONFIG

    prefix: IcdPrefix
    description: str
    # Codes under `prefix` that are not the indication (issue 13 B13: C49.A, GIST, under C49).
    excluding: list[IcdPrefix] = []


class HistoryWithSecondarySite(BaseModel):
    """An indication coded as the history of the excised primary cancer plus a secondary site (issue 13 B12).

    ICD-10-CM guideline I.C.2.d: a primary excised with no further treatment of the site, now metastatic, is coded
    with a history code (`history`, e.g. Z85.3) and the secondary site (`secondary_sites`, e.g. C77-C79). A line is
    indicated when its diagnoses include one of each, and the payer accepts the pair
    (`accepts_history_with_secondary_site`).
    """

    model_config = _CONFIG

    history: Annotated[list[IcdPrefix], Field(min_length=1)]
    secondary_sites: Annotated[list[IcdPrefix], Field(min_length=1)]
    description: str


class WithdrawnIndication(BaseModel):
    model_config = _CONFIG

    prefixes: Annotated[list[IcdPrefix], Field(min_length=1)]
    description: str


class DoseLimit(BaseModel):
    """The label dose: weight-based (`mg_per_kg`) or a flat maximum (`max_mg`), exactly one of them."""

    model_config = _CONFIG

    mg_per_kg: PositiveMg | None
    max_mg: PositiveMg | None
    above_tolerance_pct: Annotated[float, Field(ge=0, le=100)]
    below_tolerance_pct: Annotated[float, Field(ge=0, lt=100)] | None

    @model_validator(mode="after")
    def _one_kind(self) -> DoseLimit:
        if (self.mg_per_kg is None) == (self.max_mg is None):
            raise ValueError("set exactly one of mg_per_kg and max_mg")
        if self.below_tolerance_pct is not None and self.mg_per_kg is None:
            raise ValueError("below_tolerance_pct needs a weight-based dose (mg_per_kg)")
        return self


class DoseSchedule(BaseModel):
    """A label dose and the schedule it belongs to (issue 13 B11: atezolizumab 1680 mg is the 4-week dose)."""

    model_config = _CONFIG

    dose_mg: PositiveMg
    every_weeks: Annotated[int, Field(ge=1, le=52)]


class DrugProfile(BaseModel):
    model_config = _CONFIG

    code: HcpcsCode
    drug: str
    indications: Annotated[list[Indication], Field(min_length=1)]
    withdrawn_indications: list[WithdrawnIndication]
    # issue 13 B12
    history_with_secondary_site: list[HistoryWithSecondarySite] = []
    dose: DoseLimit
    min_days_between_doses: Annotated[int, Field(ge=1)]
    single_dose_vials_mg: list[PositiveMg]
    # issue 13 B14: the youngest age (whole years on the service date) the coverage criteria accept; None = none.
    min_age_years: Annotated[int, Field(ge=1, le=120)] | None = None
    # issue 13 B11: the minimum interval after a dose of one of these sizes is every_weeks x 7 days less
    # schedule_tolerance_days (both set, or neither); any other dose keeps min_days_between_doses.
    dose_schedules: list[DoseSchedule] = []
    schedule_tolerance_days: Annotated[int, Field(ge=0, le=14)] | None = None
    # issue 13 B7: mg per mL of the product, to convert an NDC quantity in mL; None = not checked.
    concentration_mg_per_ml: PositiveMg | None = None
    source: str

    @model_validator(mode="after")
    def _schedules_consistent(self) -> DrugProfile:
        if bool(self.dose_schedules) != (self.schedule_tolerance_days is not None):
            raise ValueError("set dose_schedules and schedule_tolerance_days together, or neither")
        doses = [schedule.dose_mg for schedule in self.dose_schedules]
        if len(set(doses)) < len(doses):
            raise ValueError("dose_schedules: a dose is listed more than once")
        tolerance = self.schedule_tolerance_days or 0
        if any(schedule.every_weeks * 7 <= tolerance for schedule in self.dose_schedules):
            raise ValueError("dose_schedules: a schedule is not longer than schedule_tolerance_days")
        return self


class ProfilesFile(BaseModel):
    model_config = _CONFIG

    profiles: Annotated[list[DrugProfile], Field(min_length=1)]


# ------------------------------------------------------------------------------------------- code_sets.yaml


class CodeSetsFile(BaseModel):
    model_config = _CONFIG

    evaluation_and_management_codes: Annotated[list[CodeRange], Field(min_length=1)]
    drug_administration_codes: Annotated[list[CodeRange], Field(min_length=1)]
    chemotherapy_infusion_codes: Annotated[list[HcpcsCode], Field(min_length=1)]
    additional_hour_infusion_code: HcpcsCode
    long_infusion_minutes: Annotated[int, Field(gt=0)]
    non_chemotherapy_infusion_codes: Annotated[list[CodeRange], Field(min_length=1)]
    office_places_of_service: list[PlaceOfService]
    expected_places_of_service: Annotated[list[PlaceOfService], Field(min_length=1)]
    waste_modifier: Modifier
    no_waste_modifier: Modifier
    separate_visit_modifier: Modifier
    # issue 13 B10
    drug_code_prefixes: Annotated[list[Annotated[str, Field(pattern=r"^[A-Z]$")]], Field(min_length=1)]
    # issue 13 B1
    em_codes_bundled_with_drug_administration: list[HcpcsCode]
    # issue 13 B3
    jw_jz_out_of_scope_bill_types: list[Annotated[str, Field(pattern=r"^[0-9]{2}$")]]
    # issue 13 B6
    initial_infusion_code: HcpcsCode
    sequential_infusion_code: HcpcsCode
    chemotherapy_push_code: HcpcsCode
    push_max_minutes: Annotated[int, Field(gt=0)]
    additional_hour_minutes: Annotated[int, Field(gt=0)]
    # CMS edit tables (rules/ncci.py): modifiers that let a PTP pair with modifier indicator 1 be paid.
    ncci_pair_modifiers: Annotated[list[Annotated[str, Field(pattern=r"^[A-Z0-9]{2}$")]], Field(min_length=1)]

    @field_validator("evaluation_and_management_codes", "drug_administration_codes", "non_chemotherapy_infusion_codes")
    @classmethod
    def _ranges_not_empty(cls, value: list[CodeRange]) -> list[CodeRange]:
        for code_range in value:
            _check_range(code_range)
        return value


# ---------------------------------------------------------------------------------------------- payers.yaml


class TimelyFiling(BaseModel):
    """The filing limit, counted from the earliest line's service date: calendar years or days, not both."""

    model_config = _CONFIG

    calendar_years: Annotated[int, Field(ge=1, le=10)] | None = None
    days: Annotated[int, Field(ge=1, le=3650)] | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> TimelyFiling:
        if (self.calendar_years is None) == (self.days is None):
            raise ValueError("set exactly one of calendar_years and days")
        return self


class PayerRules(BaseModel):
    """A payer's complete policy, after defaults and overrides are merged.

    The one declaration of the payer fields: `PayerOverride` (what a policy file writes) and `PAYER_FIELDS` are
    derived from it, so a new field is written here only.
    """

    model_config = _CONFIG

    timely_filing: TimelyFiling
    timely_filing_warning_days: Annotated[int, Field(ge=0, le=365)]
    # None: the payer never requires JW/JZ (so `jw_jz_required_from: null` may be written in an override).
    jw_jz_required_from: dt.date | None
    accepts_jw: bool
    prior_authorization_required: bool
    # Whether JW waste units count against a prior authorization's approved units (no source states it; payers'
    # contracts differ): the in-claim and the across-claims authorization checks both read it.
    prior_authorization_counts_waste: bool
    ndc_required: bool
    min_days_between_doses: dict[HcpcsCode, Annotated[int, Field(ge=1)]]
    # issue 13 B1: whether 99211 is bundled into a same-day drug administration (Medicare: yes).
    bundles_99211_with_drug_administration: bool
    # issue 13 B12: whether a profile's history-plus-secondary-site pair (Z85.3 + C77-C79 for J9353) counts as an
    # indication; false for a payer whose diagnosis list names the primary site only (C50 for J9353).
    accepts_history_with_secondary_site: bool

    @model_validator(mode="after")
    def _jw_consistent(self) -> PayerRules:
        if not self.accepts_jw and self.jw_jz_required_from is not None:
            raise ValueError("a payer that does not accept JW cannot require JW/JZ (jw_jz_required_from)")
        return self


PAYER_FIELDS: tuple[str, ...] = tuple(PayerRules.model_fields)
"""The names of the payer fields, in declaration order."""

# Payer fields whose complete value may be None: writing null in an override is a value (jw_jz_required_from:
# null means "never"), not a way to inherit it.
_NULLABLE_PAYER_FIELDS = frozenset(
    name for name, info in PayerRules.model_fields.items() if type(None) in get_args(info.annotation)
)


class _PayerOverrideBase(BaseModel):
    """What every override model has besides the payer fields: the null check and `written_fields`."""

    model_config = _CONFIG

    @model_validator(mode="after")
    def _no_null_where_a_value_is_required(self) -> _PayerOverrideBase:
        for name in PAYER_FIELDS:
            if name in self.model_fields_set and name not in _NULLABLE_PAYER_FIELDS and getattr(self, name) is None:
                raise ValueError(f"{name} cannot be null (leave it out to inherit it)")
        return self

    def written_fields(self) -> dict[str, object]:
        """The payer fields written in the file, by name (`jw_jz_required_from: null` counts: it means never)."""
        return {name: getattr(self, name) for name in PAYER_FIELDS if name in self.model_fields_set}


def _optional_payer_fields() -> dict[str, Any]:
    # Each field of PayerRules with its constraints kept (they live in FieldInfo.metadata once pydantic has read
    # the Annotated type), made optional with default None.
    fields: dict[str, Any] = {}
    for name, info in PayerRules.model_fields.items():
        annotation: Any = Annotated[(info.annotation, *info.metadata)] if info.metadata else info.annotation
        fields[name] = (annotation | None, None)
    return fields


if TYPE_CHECKING:
    # Type checkers cannot see fields made at run time; they see the base, so code reads an override through
    # `written_fields()` only.
    PayerOverride = _PayerOverrideBase
else:
    PayerOverride = create_model(
        "PayerOverride",
        __base__=_PayerOverrideBase,
        __module__=__name__,
        __doc__=(
            "Some fields of a payer policy; the others are inherited (only the fields written in the file count)."
        ),
        **_optional_payer_fields(),
    )


class NamedPayer(PayerOverride):
    """A payer matched by `payer.id`: the defaults of its `type`, overridden by its own fields."""

    id: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    name: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    type: PayerType


class PayersFile(BaseModel):
    """The format of `rules/policy/payers.yaml` and of a user payer policy file (every section optional)."""

    model_config = _CONFIG

    defaults: dict[PayerType, PayerOverride] = {}
    payers: list[NamedPayer] = []

    @model_validator(mode="after")
    def _ids_unique(self) -> PayersFile:
        ids = [payer.id for payer in self.payers]
        duplicates = sorted({payer_id for payer_id in ids if ids.count(payer_id) > 1})
        if duplicates:
            raise ValueError(f"payer ids listed more than once: {', '.join(duplicates)}")
        return self


# ----------------------------------------------------------------------------------------------- rules.yaml

RuleScope = Literal["profile", "claim", "crosswalk", "schema"]
_RULE_ID = re.compile(r"^(\{code\}|CLAIM|CROSSWALK)\.[A-Z0-9_]+\.[A-Z0-9_]+$|^SCHEMA\.[A-Z0-9_]+$")
_SCOPE_PREFIX = MappingProxyType({"profile": "{code}", "claim": "CLAIM", "crosswalk": "CROSSWALK", "schema": "SCHEMA"})


class RuleEntry(BaseModel):
    """One rule of the catalogue as written in rules.yaml (profile rules still hold the `{code}` placeholder)."""

    model_config = _CONFIG

    id: str
    scope: RuleScope
    requires: Literal["weight_based_dose", "min_age", "concentration"] | None = None
    category: Category
    severity: Severity
    carc: Annotated[str, StringConstraints(pattern=r"^[A-Z0-9]{1,4}$")] | None
    rarc: list[Annotated[str, StringConstraints(pattern=r"^[A-Z]{1,2}[0-9]{1,4}$")]]
    group_code: GroupCode | None
    group_code_confidence: Confidence | None = None
    description: str
    message: str
    provider_action: str
    source: str

    @model_validator(mode="after")
    def _consistent(self) -> RuleEntry:
        if not _RULE_ID.match(self.id):
            raise ValueError(f"rule id {self.id!r} does not follow <SCOPE>.<CATEGORY>.<CONDITION>")
        parts = self.id.split(".")
        if parts[0] != _SCOPE_PREFIX[self.scope]:
            raise ValueError(
                f"rule id {self.id!r} does not start with {_SCOPE_PREFIX[self.scope]!r} (scope {self.scope})"
            )
        if len(parts) == 3 and parts[1] != self.category.value.upper():
            raise ValueError(f"rule id {self.id!r}: middle part must be the category {self.category.value.upper()}")
        if self.scope == "schema" and self.category is not Category.SCHEMA:
            raise ValueError(f"rule {self.id}: schema rules have category schema")
        if (self.group_code is None) != (self.group_code_confidence is None):
            raise ValueError(f"rule {self.id}: group_code and group_code_confidence go together")
        if self.severity is not Severity.ERROR and self.carc is not None and self.group_code is not None:
            raise ValueError(f"rule {self.id}: only errors predict a denial with a group code")
        if self.requires is not None and self.scope != "profile":
            raise ValueError(f"rule {self.id}: `requires` applies to profile rules only")
        return self


class RuleSetInfo(BaseModel):
    model_config = _CONFIG

    id: Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9._-]*$")]
    version: Annotated[str, StringConstraints(pattern=r"^[0-9]+\.[0-9]+\.[0-9]+$")]


class RulesFile(BaseModel):
    model_config = _CONFIG

    ruleset: RuleSetInfo
    rules: Annotated[list[RuleEntry], Field(min_length=1)]

    @model_validator(mode="after")
    def _ids_unique(self) -> RulesFile:
        ids = [rule.id for rule in self.rules]
        duplicates = sorted({rule_id for rule_id in ids if ids.count(rule_id) > 1})
        if duplicates:
            raise ValueError(f"rule ids listed more than once: {', '.join(duplicates)}")
        return self
