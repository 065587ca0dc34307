"""The rule catalogue (rules/policy/rules.yaml): complete, cited, and consistent with the code."""

from __future__ import annotations

import dataclasses
import re
from types import MappingProxyType

import pytest

from rules.engine import RuleEngine
from rules.loading import PolicyError
from schemas.verdict import Severity


def test_group_codes_are_marked_as_inferred_except_the_one_the_sources_give(engine: RuleEngine) -> None:
    # The sources give one group code: OA with CARC 18 (exact duplicate), as commonly remitted (M).
    for spec in engine.rules():
        if spec.group_code is not None:
            expected = ("OA", "M") if spec.carc == "18" else (spec.group_code.value, "L")
            assert (spec.group_code.value, spec.group_code_confidence) == expected, spec.rule_id
            assert spec.severity is Severity.ERROR, spec.rule_id


def test_only_codes_the_sources_list_are_predicted(engine: RuleEngine) -> None:
    # rules/policy/SOURCES.md ("Denial codes") lists these CARCs and RARCs; nothing else may be predicted.
    known_carcs = {
        "4",
        "5",
        "11",
        "16",
        "18",
        "29",
        "151",
        "153",
        "167",
        "181",
        "188",
        "189",
        "197",
        "198",
        "236",  # NCCI PTP same-day pairs (fact sheet section 10, M)
        "302",
        "119",
        "97",
    }
    known_rarcs = {"N822", "N823", "M76", "M119", "N211", "N362"}

    assert {spec.carc for spec in engine.rules() if spec.carc} <= known_carcs
    assert {code for spec in engine.rules() for code in spec.rarc} <= known_rarcs


def test_profile_rules_are_expanded_for_each_profile(engine: RuleEngine) -> None:
    ids = set(engine.policy.catalogue)

    assert {"J9353.FREQUENCY.TOO_SOON", "J9022.FREQUENCY.TOO_SOON"} <= ids
    assert "J9353.UNITS.DOSE_BELOW_LABEL" in ids
    assert "J9022.UNITS.DOSE_BELOW_LABEL" not in ids
    assert engine.policy.catalogue["J9022.UNITS.DOSE_ABOVE_LABEL"].description.startswith("J9022 administered dose")


def test_engine_refuses_a_catalogue_without_an_implemented_rule(engine: RuleEngine) -> None:
    policy = engine.policy
    templates = policy.rule_templates - {"{code}.WASTE.JW_LINE_MISSING"}

    with pytest.raises(PolicyError, match=r"without a catalogue entry: \{code\}\.WASTE\.JW_LINE_MISSING"):
        RuleEngine(dataclasses.replace(policy, rule_templates=templates))


def test_engine_refuses_a_catalogue_entry_no_check_implements(engine: RuleEngine) -> None:
    policy = engine.policy
    templates = policy.rule_templates | {"CLAIM.UNITS.MUE_EXCEEDED"}
    catalogue = MappingProxyType(dict(policy.catalogue))

    with pytest.raises(PolicyError, match=re.escape("no check implements: CLAIM.UNITS.MUE_EXCEEDED")):
        RuleEngine(dataclasses.replace(policy, rule_templates=templates, catalogue=catalogue))
