"""Read the policy files under `rules/policy/` (and a user payer file), validate them and build the tables.

`load_policy` is the only entry point; it raises `PolicyError` with a readable message naming the file and
the offending field when any file is invalid.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable, Iterable, Mapping
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from rules.arithmetic import format_number
from rules.icd10cm import load_icd10cm
from rules.ncci import NO_NCCI_TABLES, NcciTableError, load_ncci_tables
from rules.policy_models import (
    CodeSetsFile,
    CodesFile,
    DrugProfile,
    PayerOverride,
    PayerRules,
    PayersFile,
    ProfilesFile,
    RuleEntry,
    RulesFile,
    TimelyFiling,
)
from rules.policy_tables import (
    CodeInfo,
    CodeSets,
    Icd10CmCodeSet,
    PayerPolicy,
    Policy,
    Profile,
    RuleSpec,
    normalise_drug_name,
    normalise_ndc,
)
from schemas.claim import PayerType
from schemas.verdict import RuleSetRef

POLICY_PACKAGE = "rules"
POLICY_DIR = "policy"
_MAX_POLICY_BYTES = 1024 * 1024

_PAYER_TYPE_LABELS: Mapping[PayerType, str | None] = MappingProxyType(
    {
        PayerType.MEDICARE: "Medicare",
        PayerType.MEDICAID: "Medicaid",
        PayerType.COMMERCIAL: None,
    }
)

ModelT = TypeVar("ModelT", bound=BaseModel)


class PolicyError(Exception):
    """A policy file is missing, not YAML, or does not validate. The message names the file and the field."""


def load_policy(
    payer_policy_file: Path | None = None,
    *,
    policy_dir: Path | None = None,
    icd10cm_loader: Callable[[], Icd10CmCodeSet] = load_icd10cm,
) -> Policy:
    """Build the policy tables from the shipped files, plus an optional user payer policy file and an optional
    policy directory of CMS edit tables (MUE, PTP: `rules.ncci`).

    With a user file, the rule set version gets `+payers.<first 12 hex digits of the file's SHA-256>`; with a
    policy directory, `+ncci.<first 12 hex digits of its manifest's SHA-256>` (the manifest holds every table's
    SHA-256), so every verdict says which payer policy and edit tables produced it. Raises `PolicyError`.
    """
    rules_file = _validate(RulesFile, _shipped("rules.yaml"), "rules.yaml")
    codes_file = _validate(CodesFile, _shipped("codes.yaml"), "codes.yaml")
    profiles_file = _validate(ProfilesFile, _shipped("profiles.yaml"), "profiles.yaml")
    code_sets_file = _validate(CodeSetsFile, _shipped("code_sets.yaml"), "code_sets.yaml")
    payers_file = _validate(PayersFile, _shipped("payers.yaml"), "payers.yaml")

    version = rules_file.ruleset.version
    user_payers = PayersFile()
    if payer_policy_file is not None:
        raw = _read_user_file(payer_policy_file)
        user_payers = _validate(PayersFile, _parse_yaml(raw, str(payer_policy_file)), str(payer_policy_file))
        version += "+payers." + hashlib.sha256(raw).hexdigest()[:12]
    ncci = NO_NCCI_TABLES
    if policy_dir is not None:
        try:
            ncci = load_ncci_tables(policy_dir)
        except NcciTableError as error:
            raise PolicyError(f"policy directory {policy_dir}: {error}") from None
        version += f"+ncci.{ncci.digest}"

    codes = _code_infos(codes_file)
    profiles = _profiles(profiles_file, codes)
    user_name = str(payer_policy_file) if payer_policy_file is not None else None
    payer_defaults, named_payers = _payers(payers_file, user_payers, user_name, profiles)
    catalogue = _catalogue(rules_file.rules, profiles)

    unit_mg_by_code = {code: info.unit_mg for code, info in codes.items()}
    unit_mg_by_code.update({n.code: n.unit_mg for n in codes_file.unit_size_neighbours})
    sizes: dict[float, list[str]] = {}
    for code, unit_mg in unit_mg_by_code.items():
        sizes.setdefault(unit_mg, []).append(code)

    return Policy(
        ruleset=RuleSetRef(id=rules_file.ruleset.id, version=version),
        catalogue=MappingProxyType(catalogue),
        rule_templates=frozenset(rule.id for rule in rules_file.rules),
        profiles=MappingProxyType(profiles),
        codes=MappingProxyType(codes),
        noc_codes=MappingProxyType({noc.code: noc.descriptor for noc in codes_file.noc_codes}),
        code_by_drug_name=MappingProxyType(_code_by_drug_name(codes_file)),
        code_by_ndc=MappingProxyType(_code_by_ndc(codes_file)),
        unit_mg_by_code=MappingProxyType(unit_mg_by_code),
        unit_sizes=tuple((size, ", ".join(sorted(codes_))) for size, codes_ in sorted(sizes.items())),
        code_sets=_code_sets(code_sets_file),
        payer_defaults=MappingProxyType(payer_defaults),
        named_payers=MappingProxyType(named_payers),
        icd10cm=icd10cm_loader(),
        ncci=ncci,
    )


# --------------------------------------------------------------------------------------------------- reading


def _shipped(name: str) -> Any:
    text = resources.files(POLICY_PACKAGE).joinpath(POLICY_DIR, name).read_text(encoding="utf-8")
    return _parse_yaml(text.encode("utf-8"), f"rules/policy/{name}")


def _read_user_file(path: Path) -> bytes:
    try:
        with path.open("rb") as handle:
            raw = handle.read(_MAX_POLICY_BYTES + 1)
    except OSError as error:
        raise PolicyError(f"payer policy file {path}: cannot be read: {error.strerror or error}") from None
    if len(raw) > _MAX_POLICY_BYTES:
        raise PolicyError(f"payer policy file {path}: larger than {_MAX_POLICY_BYTES} bytes")
    return raw


def _parse_yaml(raw: bytes, where: str) -> Any:
    try:
        document = yaml.safe_load(raw)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        position = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        problem = getattr(error, "problem", None) or "invalid YAML"
        raise PolicyError(f"{where}: not valid YAML{position}: {problem}") from None
    if document is None:
        return {}
    if not isinstance(document, dict):
        raise PolicyError(f"{where}: the top level must be a mapping, not {type(document).__name__}")
    return document


def _json_default(value: object) -> str:
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    raise TypeError(f"unsupported YAML value of type {type(value).__name__}")


def _validate(model: type[ModelT], document: Any, where: str) -> ModelT:
    # JSON mode: strict about types (no int for a string) while accepting ISO dates and enum values as text.
    try:
        text = json.dumps(document, default=_json_default, allow_nan=False)
    except (TypeError, ValueError) as error:
        raise PolicyError(f"{where}: {error}") from None
    try:
        return model.model_validate_json(text)
    except ValidationError as error:
        problems = []
        for detail in error.errors(include_url=False, include_input=False):
            location = ".".join(str(part) for part in detail["loc"]) or "(top level)"
            problems.append(f"  {location}: {detail['msg']}")
        raise PolicyError(f"{where}: {error.error_count()} problem(s):\n" + "\n".join(problems)) from None


# ------------------------------------------------------------------------------------------------ building


def _code_infos(codes_file: CodesFile) -> dict[str, CodeInfo]:
    return {
        entry.code: CodeInfo(
            code=entry.code,
            descriptor=entry.descriptor,
            unit_mg=entry.unit_mg,
            effective_from=entry.effective_from,
            drug=entry.drug_names[0],
            ndcs=tuple(entry.ndcs),
        )
        for entry in codes_file.codes
    }


def _code_by_drug_name(codes_file: CodesFile) -> dict[str, str]:
    # Keyed by the normalised name and, so that the common spellings need no normalising per claim, by the
    # lower-case name as listed.
    table: dict[str, str] = {}
    for entry in codes_file.codes:
        for name in entry.drug_names:
            for key in (normalise_drug_name(name), name.lower()):
                if table.get(key, entry.code) != entry.code:
                    raise PolicyError(f"codes.yaml: drug name {name!r} is listed for {table[key]} and {entry.code}")
                table[key] = entry.code
    return table


def _code_by_ndc(codes_file: CodesFile) -> dict[str, str]:
    table: dict[str, str] = {}
    for entry in codes_file.codes:
        for ndc in entry.ndcs:
            digits = normalise_ndc(ndc)
            if digits is None:  # the model's pattern already guarantees 5-4-2
                raise PolicyError(f"codes.yaml: NDC {ndc!r} of {entry.code} is not 5-4-2")
            if table.get(digits, entry.code) != entry.code:
                raise PolicyError(f"codes.yaml: NDC {ndc} is listed for {table[digits]} and {entry.code}")
            # Both written forms (5-4-2 and 11 digits), so that a claim's NDC is looked up as sent.
            table[digits] = table[ndc] = entry.code
    return table


def _profiles(profiles_file: ProfilesFile, codes: dict[str, CodeInfo]) -> dict[str, Profile]:
    profiles: dict[str, Profile] = {}
    for entry in profiles_file.profiles:
        info = codes.get(entry.code)
        if info is None:
            raise PolicyError(f"profiles.yaml: profile {entry.code} has no entry in codes.yaml")
        if entry.code in profiles:
            raise PolicyError(f"profiles.yaml: profile {entry.code} is listed more than once")
        profiles[entry.code] = _profile(entry, info)
    return profiles


def _profile(entry: DrugProfile, info: CodeInfo) -> Profile:
    dose = entry.dose
    if dose.mg_per_kg is not None:
        limit_text = f"{format_number(dose.mg_per_kg)} mg/kg"
        if dose.above_tolerance_pct:
            limit_text += f" + {format_number(dose.above_tolerance_pct)}%"
    else:
        limit_text = f"at most {format_number(dose.max_mg or 0)} mg per dose"
        if dose.above_tolerance_pct:
            limit_text += f" + {format_number(dose.above_tolerance_pct)}%"
    indications = "; ".join(
        f"{i.prefix} ({i.description}{', not ' + ', '.join(i.excluding) if i.excluding else ''})"
        for i in entry.indications
    )
    tolerance = entry.schedule_tolerance_days or 0
    schedules = tuple((s.dose_mg, s.every_weeks, s.every_weeks * 7 - tolerance) for s in entry.dose_schedules)
    return Profile(
        code=entry.code,
        descriptor=info.descriptor,
        drug=entry.drug,
        unit_mg=info.unit_mg,
        effective_from=info.effective_from,
        indication_prefixes=tuple(i.prefix for i in entry.indications),
        indication_exclusions=tuple(prefix for i in entry.indications for prefix in i.excluding),
        indications_text=indications,
        withdrawn=tuple((tuple(w.prefixes), w.description) for w in entry.withdrawn_indications),
        mg_per_kg=dose.mg_per_kg,
        max_mg=dose.max_mg,
        above_factor=1 + dose.above_tolerance_pct / 100,
        below_factor=None if dose.below_tolerance_pct is None else 1 - dose.below_tolerance_pct / 100,
        below_tolerance_pct=dose.below_tolerance_pct,
        dose_limit_text=limit_text,
        min_days_between_doses=entry.min_days_between_doses,
        # Largest first: the vial arithmetic (rules/checks/vials.py) tries the larger sizes first.
        single_dose_vials_mg=tuple(sorted(set(entry.single_dose_vials_mg), reverse=True)),
        min_age_years=entry.min_age_years,
        # issue 13 B7
        concentration_mg_per_ml=entry.concentration_mg_per_ml,
        ndcs=info.ndcs,
        # issue 13 B12
        history_indications=tuple(
            (tuple(h.history), tuple(h.secondary_sites)) for h in entry.history_with_secondary_site
        ),
        history_indications_text="; ".join(
            f"{' or '.join(h.history)} with a secondary site under {', '.join(h.secondary_sites)} ({h.description})"
            for h in entry.history_with_secondary_site
        ),
        # issue 13 B11
        dose_schedules=schedules,
        schedule_tolerance_days=tolerance,
        min_interval_text=_min_interval_text(entry.min_days_between_doses, schedules),
    )


def _min_interval_text(min_days: int, schedules: tuple[tuple[float, int, int], ...]) -> str:
    if not schedules:
        return f"{min_days} days"
    after = ", ".join(f"{days} days after {format_number(mg)} mg" for mg, _, days in schedules)
    return f"{after}, {min_days} days after any other dose"


def _expand(ranges: Iterable[tuple[int, int]]) -> frozenset[str]:
    return frozenset(f"{number:05d}" for low, high in ranges for number in range(low, high + 1))


def _code_sets(code_sets: CodeSetsFile) -> CodeSets:
    return CodeSets(
        evaluation_and_management=_expand(code_sets.evaluation_and_management_codes),
        drug_administration=_expand(code_sets.drug_administration_codes),
        chemotherapy_infusion=frozenset(code_sets.chemotherapy_infusion_codes),
        chemotherapy_infusion_text=", ".join(code_sets.chemotherapy_infusion_codes),
        additional_hour_infusion=code_sets.additional_hour_infusion_code,
        long_infusion_minutes=code_sets.long_infusion_minutes,
        non_chemotherapy_infusion=_expand(code_sets.non_chemotherapy_infusion_codes),
        office_places_of_service=frozenset(code_sets.office_places_of_service),
        expected_places_of_service=frozenset(code_sets.expected_places_of_service),
        expected_places_of_service_text=", ".join(code_sets.expected_places_of_service),
        waste_modifier=code_sets.waste_modifier,
        no_waste_modifier=code_sets.no_waste_modifier,
        separate_visit_modifier=code_sets.separate_visit_modifier,
        # issue 13 B10
        drug_code_prefixes=tuple(code_sets.drug_code_prefixes),
        em_codes_bundled_with_drug_administration=frozenset(code_sets.em_codes_bundled_with_drug_administration),
        jw_jz_out_of_scope_bill_types=frozenset(code_sets.jw_jz_out_of_scope_bill_types),
        # issue 13 B6
        initial_infusion=code_sets.initial_infusion_code,
        sequential_infusion=code_sets.sequential_infusion_code,
        chemotherapy_push=code_sets.chemotherapy_push_code,
        push_max_minutes=code_sets.push_max_minutes,
        additional_hour_minutes=code_sets.additional_hour_minutes,
        administration_time_codes=frozenset(
            (
                code_sets.initial_infusion_code,
                code_sets.additional_hour_infusion_code,
                code_sets.sequential_infusion_code,
                code_sets.chemotherapy_push_code,
            )
        ),
        ncci_pair_modifiers=frozenset(code_sets.ncci_pair_modifiers),
        ncci_pair_modifiers_text=", ".join(code_sets.ncci_pair_modifiers),
    )


def _timely_filing_text(limit: TimelyFiling) -> str:
    if limit.days is not None:
        return f"{limit.days} days"
    years = limit.calendar_years or 1
    return "one calendar year" if years == 1 else f"{years} calendar years"


def _merge(base: dict[str, object], override: PayerOverride) -> dict[str, object]:
    merged = dict(base)
    for name, value in override.written_fields().items():
        if name == "min_days_between_doses" and isinstance(value, dict):
            previous = merged.get(name)
            merged[name] = {**(previous if isinstance(previous, dict) else {}), **value}
        elif isinstance(value, BaseModel):
            merged[name] = value.model_dump()
        else:
            merged[name] = value
    return merged


def _resolve(fields: dict[str, object], where: str, profiles: dict[str, Profile]) -> PayerRules:
    try:
        rules = PayerRules.model_validate_json(json.dumps(fields, default=_json_default))
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in d['loc']) or '(payer)'}: {d['msg']}"
            for d in error.errors(include_url=False, include_input=False)
        )
        raise PolicyError(f"{where}: {problems}") from None
    unknown = sorted(set(rules.min_days_between_doses) - set(profiles))
    if unknown:
        raise PolicyError(
            f"{where}: min_days_between_doses names {', '.join(unknown)}, which has no drug profile "
            f"(profiles: {', '.join(sorted(profiles))})"
        )
    return rules


def _payers(
    shipped: PayersFile, user: PayersFile, user_name: str | None, profiles: dict[str, Profile]
) -> tuple[dict[str, PayerPolicy], dict[str, PayerPolicy]]:
    shipped_name = "rules/policy/payers.yaml"
    defaults_fields: dict[PayerType, dict[str, object]] = {}
    for payer_type in PayerType:
        fields: dict[str, object] = {}
        for source in (shipped, user):
            override = source.defaults.get(payer_type)
            if override is not None:
                fields = _merge(fields, override)
        defaults_fields[payer_type] = fields

    defaults = {
        payer_type.value: PayerPolicy(
            label=_PAYER_TYPE_LABELS[payer_type],
            rules=(
                rules := _resolve(
                    fields,
                    f"{user_name if payer_type in user.defaults else shipped_name}: defaults.{payer_type.value}",
                    profiles,
                )
            ),
            timely_filing_text=_timely_filing_text(rules.timely_filing),
        )
        for payer_type, fields in defaults_fields.items()
    }

    named_entries = {payer.id: (shipped_name, payer) for payer in shipped.payers}
    named_entries.update({payer.id: (user_name or "", payer) for payer in user.payers})
    named: dict[str, PayerPolicy] = {}
    for payer_id, (file_name, payer) in named_entries.items():
        rules = _resolve(_merge(defaults_fields[payer.type], payer), f"{file_name}: payer {payer_id}", profiles)
        named[payer_id] = PayerPolicy(
            label=payer.name, rules=rules, timely_filing_text=_timely_filing_text(rules.timely_filing)
        )
    return defaults, named


def _catalogue(entries: list[RuleEntry], profiles: dict[str, Profile]) -> dict[str, RuleSpec]:
    catalogue: dict[str, RuleSpec] = {}
    for entry in entries:
        if entry.scope != "profile":
            catalogue[entry.id] = _spec(entry, entry.id, None, entry.description)
            continue
        for profile in profiles.values():
            if entry.requires == "weight_based_dose" and profile.below_factor is None:
                continue
            if entry.requires == "min_age" and profile.min_age_years is None:
                continue
            # issue 13 B7
            if entry.requires == "concentration" and profile.concentration_mg_per_ml is None:
                continue
            description = entry.description.format_map(
                {
                    "code": profile.code,
                    "dose_limit": profile.dose_limit_text,
                    "below_pct": format_number(profile.below_tolerance_pct or 0),
                    "min_days": profile.min_days_between_doses,
                    "min_age": profile.min_age_years,
                    "min_interval": profile.min_interval_text,
                }
            )
            rule_id = entry.id.replace("{code}", profile.code)
            catalogue[rule_id] = _spec(entry, rule_id, profile.code, description)
    return catalogue


def _spec(entry: RuleEntry, rule_id: str, profile_code: str | None, description: str) -> RuleSpec:
    return RuleSpec(
        rule_id=rule_id,
        scope=entry.scope,
        profile_code=profile_code,
        category=entry.category,
        severity=entry.severity,
        carc=entry.carc,
        rarc=tuple(entry.rarc),
        group_code=entry.group_code,
        group_code_confidence=entry.group_code_confidence,
        description=description,
        message=entry.message,
        provider_action=entry.provider_action,
        source=entry.source,
    )
