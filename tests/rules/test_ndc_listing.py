"""issue 13 B7: an NDC not listed for the billed code is a finding only where codes.yaml lists the code's NDCs."""

from __future__ import annotations

import dataclasses
import json
from types import MappingProxyType

from rules.engine import RuleEngine
from schemas.claim import ClaimSubmitted
from tests.rules.cases_loader import apply_patch, load_bases
from tests.rules.conftest import VALIDATED_AT

_UNLISTED = {"set": {"lines.0.ndc.code": "70720-0099-01"}}


def _finding_ids(engine: RuleEngine) -> list[str]:
    claim = ClaimSubmitted.model_validate_json(json.dumps(apply_patch(load_bases()["medicare_j9353"], _UNLISTED)))
    return [finding.rule_id for finding in engine.validate(claim, validated_at=VALIDATED_AT, source=None).findings]


def test_an_unlisted_ndc_is_a_finding_where_the_code_lists_ndcs(engine: RuleEngine) -> None:
    assert "J9353.NDC.NOT_LISTED_FOR_CODE" in _finding_ids(engine)


def test_a_code_with_no_listed_ndcs_draws_no_not_listed_finding(engine: RuleEngine) -> None:
    # Given J9353's profile with no NDCs listed (as codes.yaml `ndcs: []` would give)
    policy = engine.policy
    profiles = MappingProxyType({**policy.profiles, "J9353": dataclasses.replace(policy.profiles["J9353"], ndcs=())})
    without_ndcs = RuleEngine(dataclasses.replace(policy, profiles=profiles))

    assert "J9353.NDC.NOT_LISTED_FOR_CODE" not in _finding_ids(without_ndcs)
