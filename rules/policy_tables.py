"""The policy as the rules read it: immutable lookup tables built once by `rules.loading.load_policy`.

Everything a rule would otherwise recompute per claim (code -> profile, normalised NDC -> code, drug name ->
code, indication prefix tuples, expanded CPT code ranges) is computed here, at load time.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass

from rules.arithmetic import format_number
from rules.ncci import NO_NCCI_TABLES, NcciTables
from rules.policy_models import PayerRules
from schemas.verdict import Category, GroupCode, RuleSetRef, Severity

_DRUG_SUFFIX = re.compile(r"-[a-z]{4}$")
_SPACES = re.compile(r"\s+")
# Below this difference two doses in mg are the same (float noise of units x unit size).
_MG_EPSILON = 1e-6


def normalise_drug_name(name: str) -> str:
    """Case-insensitive drug name without its four-letter suffix: `Margetuximab-CMKB` -> `margetuximab`."""
    return _DRUG_SUFFIX.sub("", _SPACES.sub(" ", name.strip().lower()))


def lookup_drug_code(table: Mapping[str, str], name: str) -> str | None:
    """The code of drug `name` in a `Policy.code_by_drug_name` table, or None."""
    code = table.get(name.lower())
    return code if code is not None else table.get(normalise_drug_name(name))


def normalise_ndc(code: str) -> str | None:
    """The 11 digits of an NDC written as 11 plain digits or 5-4-2 with hyphens; None for any other form."""
    if len(code) == 11 and code.isdigit() and code.isascii():
        return code
    if len(code) == 13 and code[5] == "-" and code[10] == "-":
        digits = code[:5] + code[6:10] + code[11:]
        if digits.isdigit() and digits.isascii():
            return digits
    return None


@dataclass(frozen=True, slots=True)
class RuleSpec:
    """One rule of the catalogue, expanded for its profile: what a finding with this rule id says and predicts."""

    rule_id: str
    scope: str
    profile_code: str | None
    category: Category
    severity: Severity
    carc: str | None
    rarc: tuple[str, ...]
    group_code: GroupCode | None
    group_code_confidence: str | None
    description: str
    message: str
    provider_action: str
    source: str


@dataclass(frozen=True, slots=True)
class CodeInfo:
    """A specific drug code of the similar-codes table."""

    code: str
    descriptor: str
    unit_mg: float
    effective_from: dt.date | None
    drug: str
    # issue 13 B7: the NDCs listed for the code, 5-4-2 (empty: none in the sources).
    ndcs: tuple[str, ...] = ()

    def in_effect_on(self, day: dt.date) -> bool:
        return self.effective_from is None or day >= self.effective_from


@dataclass(frozen=True, slots=True)
class Profile:
    """A drug profile joined with its code's entry: what the profile rules check drug lines against."""

    code: str
    descriptor: str
    drug: str
    unit_mg: float
    effective_from: dt.date | None
    indication_prefixes: tuple[str, ...]
    # Prefixes under an indication prefix that are not indicated (str.startswith tuples; empty = none).
    indication_exclusions: tuple[str, ...]
    indications_text: str
    # (prefixes, description) of former indications, named in the finding when a claim points at one.
    withdrawn: tuple[tuple[tuple[str, ...], str], ...]
    mg_per_kg: float | None
    max_mg: float | None
    above_factor: float
    below_factor: float | None
    below_tolerance_pct: float | None
    dose_limit_text: str
    min_days_between_doses: int
    # Single-dose vial sizes in mg, largest first (rules/checks/vials.py); empty = no vial arithmetic.
    single_dose_vials_mg: tuple[float, ...]
    # The youngest age in whole years on the service date (rules/checks/coverage.py); None = not checked.
    min_age_years: int | None
    # issue 13 B7: mg per mL of the product (None: NDC quantities are not checked), and the code's listed NDCs
    # (5-4-2; empty: none listed, so no NDC is "not listed").
    concentration_mg_per_ml: float | None
    ndcs: tuple[str, ...]
    # issue 13 B12: (history prefixes, secondary-site prefixes) pairs that together are an indication when the
    # payer accepts them, and how messages name them ("" when the profile has none).
    history_indications: tuple[tuple[tuple[str, ...], tuple[str, ...]], ...] = ()
    history_indications_text: str = ""
    # issue 13 B11: (dose mg, schedule weeks, minimum days after that dose) of the label's dose-dependent schedules,
    # and the tolerance in days; empty = every dose keeps min_days_between_doses.
    dose_schedules: tuple[tuple[float, int, int], ...] = ()
    schedule_tolerance_days: int = 0
    min_interval_text: str = ""

    def min_days_after(self, dose_mg: float) -> tuple[int, str]:
        """The minimum days before the next dose after a dose of `dose_mg` (the billed units x unit size), and the
        basis a message names: the schedule of that dose when it is one of `dose_schedules`, else
        `min_days_between_doses`."""
        for schedule_mg, weeks, min_days in self.dose_schedules:
            if abs(schedule_mg - dose_mg) < _MG_EPSILON:
                return min_days, (
                    f"label schedule of the {format_number(schedule_mg)} mg dose: every {weeks} weeks, less "
                    f"{self.schedule_tolerance_days} days' tolerance"
                )
        return self.min_days_between_doses, "label schedule with tolerance"


@dataclass(frozen=True, slots=True)
class CodeSets:
    evaluation_and_management: frozenset[str]
    drug_administration: frozenset[str]
    chemotherapy_infusion: frozenset[str]
    chemotherapy_infusion_text: str
    additional_hour_infusion: str
    long_infusion_minutes: int
    non_chemotherapy_infusion: frozenset[str]
    office_places_of_service: frozenset[str]
    expected_places_of_service: frozenset[str]
    expected_places_of_service_text: str
    waste_modifier: str
    no_waste_modifier: str
    separate_visit_modifier: str
    # issue 13 B10
    drug_code_prefixes: tuple[str, ...]
    # issue 13 B1: E/M codes a payer that bundles them does not pay on a drug-administration day
    em_codes_bundled_with_drug_administration: frozenset[str]
    # issue 13 B3: types of bill (two digits) outside the JW/JZ policy
    jw_jz_out_of_scope_bill_types: frozenset[str]
    # issue 13 B6: administration units against the infusion time
    initial_infusion: str
    sequential_infusion: str
    chemotherapy_push: str
    push_max_minutes: int
    additional_hour_minutes: int
    # the three codes above and additional_hour_infusion, for a quick "anything to check on this date?"
    administration_time_codes: frozenset[str]
    ncci_pair_modifiers: frozenset[str]
    ncci_pair_modifiers_text: str


@dataclass(frozen=True, slots=True)
class PayerPolicy:
    """A payer's resolved policy (defaults of its type plus its own overrides)."""

    label: str | None
    rules: PayerRules
    timely_filing_text: str

    def filing_deadline(self, service_date: dt.date) -> dt.date:
        """The last day a claim for `service_date` is on time (filed on that day is on time)."""
        limit = self.rules.timely_filing
        if limit.days is not None:
            return service_date + dt.timedelta(days=limit.days)
        years = limit.calendar_years or 1
        try:
            return service_date.replace(year=service_date.year + years)
        except ValueError:
            # 29 February: the anniversary falls on 28 February (the conservative reading).
            return service_date.replace(year=service_date.year + years, day=28)

    def jw_jz_required_on(self, service_date: dt.date) -> bool:
        start = self.rules.jw_jz_required_from
        return start is not None and service_date >= start


@dataclass(frozen=True, slots=True)
class Icd10CmCodeSet:
    """ICD-10-CM codes in dotted form: every category/subcategory/code, and the billable (leaf) ones."""

    valid: frozenset[str]
    billable: frozenset[str]
    source: str
    # The service dates the release is in force for (CMS releases take effect on 1 October, the new fiscal year,
    # or 1 April, a mid-year update, and stay in force until 30 September); None = not known, not checked.
    in_force_from: dt.date | None = None
    in_force_to: dt.date | None = None

    def in_force_on(self, day: dt.date) -> bool:
        """Whether this release is the one in force on `day` (True when its dates are not known)."""
        if self.in_force_from is None or self.in_force_to is None:
            return True
        return self.in_force_from <= day <= self.in_force_to


@dataclass(frozen=True, slots=True)
class Policy:
    """Everything the rules read, immutable. Built by `rules.loading.load_policy`."""

    ruleset: RuleSetRef
    catalogue: Mapping[str, RuleSpec]
    # The rule ids as written in rules.yaml ("{code}.WASTE.JW_LINE_MISSING"), to check against the code.
    rule_templates: frozenset[str]
    profiles: Mapping[str, Profile]
    codes: Mapping[str, CodeInfo]
    noc_codes: Mapping[str, str]
    # Drug name -> code: keys are normalised names and lower-case names as listed (look up `name.lower()`
    # first, then `normalise_drug_name(name)`).
    code_by_drug_name: Mapping[str, str]
    # NDC -> code: keys in both written forms, 5-4-2 and 11 digits.
    code_by_ndc: Mapping[str, str]
    unit_mg_by_code: Mapping[str, float]
    # (unit size in mg, the codes with that unit size) for every known unit size, to explain unit mix-ups.
    unit_sizes: tuple[tuple[float, str], ...]
    code_sets: CodeSets
    payer_defaults: Mapping[str, PayerPolicy]
    named_payers: Mapping[str, PayerPolicy]
    icd10cm: Icd10CmCodeSet
    # CMS edit tables (MUE, PTP) from the policy directory; empty without one (the MUE and PTP rules then do not run).
    ncci: NcciTables = NO_NCCI_TABLES
