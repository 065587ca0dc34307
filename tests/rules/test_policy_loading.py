"""Policy files: shipped data loads; a user payer file overrides it; an invalid file fails with a clear error."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from rules.engine import RuleEngine, load_engine
from rules.loading import PolicyError, load_policy
from rules.policy_models import PAYER_FIELDS, NamedPayer, PayerOverride, PayerRules
from rules.policy_tables import Icd10CmCodeSet, Policy
from schemas.claim import ClaimSubmitted
from tests.rules.cases_loader import apply_patch, load_bases
from tests.rules.conftest import VALIDATED_AT


def _no_icd() -> Icd10CmCodeSet:
    # Payer-file tests do not need the ICD-10-CM code set (seconds to load).
    return Icd10CmCodeSet(valid=frozenset(), billable=frozenset(), source="none")


def _policy(tmp_path: Path, text: str) -> Policy:
    path = tmp_path / "payers.yaml"
    path.write_text(text, encoding="utf-8")
    return load_policy(path, icd10cm_loader=_no_icd)


def test_shipped_policy_has_the_issue_defaults(engine: RuleEngine) -> None:
    defaults = engine.policy.payer_defaults
    medicare, medicaid, commercial = (
        defaults["medicare"].rules,
        defaults["medicaid"].rules,
        defaults["commercial"].rules,
    )

    assert medicare.timely_filing.calendar_years == 1
    assert medicare.jw_jz_required_from == dt.date(2023, 7, 1)
    assert (medicaid.timely_filing.days, medicaid.ndc_required, medicaid.jw_jz_required_from) == (365, True, None)
    assert (commercial.timely_filing.days, commercial.prior_authorization_required) == (180, True)


def test_shipped_profiles_and_similar_codes(engine: RuleEngine) -> None:
    policy = engine.policy
    j9353, j9022 = policy.profiles["J9353"], policy.profiles["J9022"]

    assert (j9353.unit_mg, j9353.effective_from, j9353.min_days_between_doses) == (5, dt.date(2021, 7, 1), 18)
    assert (j9022.unit_mg, j9022.max_mg, j9022.min_days_between_doses) == (10, 1680, 12)
    assert policy.code_by_drug_name["atezolizumab"] == "J9022"
    assert policy.code_by_drug_name["atezolizumab and hyaluronidase"] == "J9024"
    assert policy.code_by_ndc["50242091701"] == "J9022"
    assert set(policy.noc_codes) == {"J3490", "J9999", "J3590", "C9399"}
    assert {"J9024", "J9271", "J9299", "J9173", "J9023", "J9357"} <= set(policy.codes)


def test_named_payer_overrides_its_type_defaults(engine: RuleEngine) -> None:
    named = engine.policy.named_payers["EXAMPLE-COMMERCIAL-1"].rules
    default = engine.policy.payer_defaults["commercial"].rules

    assert named.timely_filing.days == 90
    assert named.accepts_jw is False
    assert named.min_days_between_doses == {"J9353": 21}
    assert named.prior_authorization_required == default.prior_authorization_required


def test_user_payer_file_adds_a_payer_and_overrides_defaults(tmp_path: Path) -> None:
    policy = _policy(
        tmp_path,
        """
defaults:
  medicaid:
    timely_filing: {days: 180}
payers:
  - id: STATE-MEDICAID-X
    name: State Medicaid X
    type: medicaid
    ndc_required: false
    jw_jz_required_from: 2024-01-01
  - id: EXAMPLE-COMMERCIAL-1
    name: Example Commercial Health Plan (renegotiated)
    type: commercial
    timely_filing: {days: 120}
""",
    )

    medicaid_default = policy.payer_defaults["medicaid"].rules
    assert medicaid_default.timely_filing.days == 180
    assert medicaid_default.ndc_required is True
    state = policy.named_payers["STATE-MEDICAID-X"].rules
    assert (state.timely_filing.days, state.ndc_required, state.jw_jz_required_from) == (
        180,
        False,
        dt.date(2024, 1, 1),
    )
    replaced = policy.named_payers["EXAMPLE-COMMERCIAL-1"]
    assert replaced.label == "Example Commercial Health Plan (renegotiated)"
    assert replaced.rules.timely_filing.days == 120
    assert replaced.rules.accepts_jw is True


def test_user_payer_file_marks_the_ruleset_version(tmp_path: Path) -> None:
    first = _policy(tmp_path, "payers: []\n")
    second = _policy(tmp_path, "payers: []  # changed\n")

    assert first.ruleset.version.startswith("1.3.0+payers.")
    assert first.ruleset.version != second.ruleset.version


def test_user_payer_file_changes_verdicts(tmp_path: Path) -> None:
    # Given a user file giving Medicare claims a 10-day filing limit (a test value, not a real policy)
    path = tmp_path / "payers.yaml"
    path.write_text("defaults:\n  medicare:\n    timely_filing: {days: 10}\n", encoding="utf-8")
    engine = load_engine(path)
    claim = ClaimSubmitted.model_validate_json(json.dumps(load_bases()["medicare_j9353"]))

    verdict = engine.validate(claim, validated_at=VALIDATED_AT, source=None)

    assert [f.rule_id for f in verdict.findings] == ["CLAIM.TIMELY_FILING.EXPIRED"]
    assert verdict.ruleset == engine.ruleset


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("payers: [\n", "not valid YAML (line 2"),
        ("- just a list\n", "top level must be a mapping"),
        ("defaults:\n  medicare:\n    timely_filing: {weeks: 2}\n", "defaults.medicare.timely_filing.weeks"),
        ("defaults:\n  medicare:\n    timely_filing: {days: 30, calendar_years: 1}\n", "exactly one of"),
        ("defaults:\n  medicare:\n    timely_filing: {days: '30'}\n", "timely_filing.days"),
        ("defaults:\n  dental:\n    ndc_required: true\n", "defaults.dental"),
        ("defaults:\n  medicare:\n    ndc_required: null\n", "ndc_required cannot be null"),
        ("payers:\n  - {id: P1, name: P, type: commercial, accept_jw: false}\n", "payers.0.accept_jw"),
        ("payers:\n  - {id: P1, type: commercial}\n", "payers.0.name"),
        ("payers:\n  - {id: P1, name: P, type: medicare, accepts_jw: false}\n", "cannot require JW/JZ"),
        ("payers:\n  - {id: P1, name: P, type: commercial, min_days_between_doses: {J9271: 7}}\n", "J9271"),
        ("payers:\n  - {id: P1, name: P, type: commercial}\n  - {id: P1, name: Q, type: commercial}\n", "P1"),
    ],
)
def test_invalid_payer_file_fails_with_a_clear_error(tmp_path: Path, text: str, expected: str) -> None:
    with pytest.raises(PolicyError) as raised:
        _policy(tmp_path, text)

    assert str(raised.value).startswith(str(tmp_path / "payers.yaml"))
    assert expected in str(raised.value)


def test_missing_payer_file_fails_with_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="cannot be read"):
        load_policy(tmp_path / "absent.yaml", icd10cm_loader=_no_icd)


def test_empty_payer_file_keeps_the_shipped_policy(tmp_path: Path, engine: RuleEngine) -> None:
    policy = _policy(tmp_path, "")

    assert policy.payer_defaults["medicare"].rules == engine.policy.payer_defaults["medicare"].rules
    assert set(policy.named_payers) == set(engine.policy.named_payers)


def test_claim_uses_named_payer_policy_by_id(engine: RuleEngine) -> None:
    # Given the same late filing: 100 days after the service, within 180 (commercial) but over 90 (named payer)
    document = apply_patch(load_bases()["commercial_j9022"], {"set": {"submitted_on": "2027-02-18"}})
    named = apply_patch(document, {"set": {"payer": {"id": "EXAMPLE-COMMERCIAL-1", "type": "commercial"}}})

    default_verdict = engine.validate(
        ClaimSubmitted.model_validate_json(json.dumps(document)), validated_at=VALIDATED_AT, source=None
    )
    named_verdict = engine.validate(
        ClaimSubmitted.model_validate_json(json.dumps(named)), validated_at=VALIDATED_AT, source=None
    )

    assert [f.rule_id for f in default_verdict.findings] == []
    assert [f.rule_id for f in named_verdict.findings] == ["CLAIM.TIMELY_FILING.EXPIRED"]


def test_override_model_has_every_payer_field_and_none_required() -> None:
    # PayerOverride is derived from PayerRules: a field added there is writable in a payer file at once.
    assert tuple(PayerOverride.model_fields) == PAYER_FIELDS == tuple(PayerRules.model_fields)
    assert PayerOverride().written_fields() == {}


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("timely_filing_warning_days", 366, "timely_filing_warning_days: Input should be less than or equal to 365"),
        ("timely_filing_warning_days", 1.5, "timely_filing_warning_days: Input should be a valid integer"),
        ("min_days_between_doses", {"J9353": 0}, "min_days_between_doses.J9353"),
        ("min_days_between_doses", {"j9353": 7}, "min_days_between_doses.j9353.[key]"),
        ("jw_jz_required_from", 20230701, "jw_jz_required_from: Input should be a valid date"),
        ("accepts_jw", "yes", "accepts_jw: Input should be a valid boolean"),
        ("timely_filing", {"weeks": 2}, "timely_filing.weeks: Extra inputs are not permitted"),
    ],
)
def test_an_override_keeps_the_constraints_of_the_payer_field(
    tmp_path: Path, field: str, value: object, expected: str
) -> None:
    with pytest.raises(PolicyError) as raised:
        _policy(tmp_path, json.dumps({"defaults": {"medicare": {field: value}}}))

    assert f"defaults.medicare.{expected}" in str(raised.value)


@pytest.mark.parametrize("field", PAYER_FIELDS)
def test_null_is_refused_unless_the_payer_field_takes_none(tmp_path: Path, field: str) -> None:
    text = json.dumps({"payers": [{"id": "P1", "name": "P", "type": "commercial", field: None}]})

    if field == "jw_jz_required_from":
        assert _policy(tmp_path, text).named_payers["P1"].rules.jw_jz_required_from is None
    else:
        with pytest.raises(PolicyError, match=f"payers.0: Value error, {field} cannot be null"):
            _policy(tmp_path, text)


def test_written_fields_are_the_payer_fields_written_in_the_file() -> None:
    payer = NamedPayer.model_validate_json(
        '{"id": "P1", "name": "P", "type": "medicare", "jw_jz_required_from": null, "ndc_required": true}'
    )

    assert payer.written_fields() == {"jw_jz_required_from": None, "ndc_required": True}


def test_two_null_fields_name_the_first_in_declaration_order(tmp_path: Path) -> None:
    # The check walks the declared fields, not the (hash-ordered) set of written ones: the message is stable.
    text = json.dumps({"defaults": {"commercial": {"ndc_required": None, "accepts_jw": None}}})

    with pytest.raises(PolicyError, match="accepts_jw cannot be null"):
        _policy(tmp_path, text)


@pytest.mark.parametrize(
    ("counts_waste", "expected"), [(True, ["CLAIM.PRIOR_AUTHORIZATION.UNITS_EXCEEDED"]), (False, [])]
)
def test_counts_waste_field_decides_whether_jw_units_count(
    tmp_path: Path, counts_waste: bool, expected: list[str]
) -> None:
    # Given 210 units approved and 210 + JW 40 billed (issue 13 B9), under a payer file setting the field
    path = tmp_path / "payers.yaml"
    value = "true" if counts_waste else "false"
    path.write_text(f"defaults:\n  commercial:\n    prior_authorization_counts_waste: {value}\n", encoding="utf-8")
    engine = load_engine(path)
    document = apply_patch(
        load_bases()["medicare_j9353"],
        {
            "set": {
                "payer": {"id": "ACME-PPO", "type": "commercial"},
                "prior_authorization": {
                    "number": "PA-B9",
                    "approved_units": 210,
                    "valid_from": "2026-10-01",
                    "valid_to": "2026-12-31",
                },
            }
        },
    )
    claim = ClaimSubmitted.model_validate_json(json.dumps(document))

    verdict = engine.validate(claim, validated_at=VALIDATED_AT, source=None)

    # Then the waste counts toward the approved units only when the field says so
    assert [f.rule_id for f in verdict.findings] == expected
