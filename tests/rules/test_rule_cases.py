"""The table-driven rule cases of cases/*.yaml: each claim yields exactly the findings its case lists."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from rules.engine import RuleEngine, load_engine
from rules.history import RULES as HISTORY_RULES
from rules.schema_findings import RULES as SCHEMA_RULES
from schemas.parsing import ParsedClaim, parse_claim_event
from tests.rules.cases_loader import RuleCase, load_cases
from tests.rules.conftest import VALIDATED_AT
from tests.rules.ncci_files import import_case_tables

CASES = load_cases()


@pytest.fixture(scope="module")
def ncci_engines(tmp_path_factory: pytest.TempPathFactory) -> Callable[[RuleCase], RuleEngine]:
    """The engine of a case file with `ncci_tables`: its tables written in CMS's layout and imported into a policy
    directory of its own (one engine per file)."""
    engines: dict[str, RuleEngine] = {}

    def engine_for(case: RuleCase) -> RuleEngine:
        if case.file not in engines:
            policy_dir = tmp_path_factory.mktemp(f"policy-{case.file}")
            import_case_tables(case.ncci_tables or {}, policy_dir)
            engines[case.file] = load_engine(policy_dir=policy_dir)
        return engines[case.file]

    return engine_for


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_rule_case(case: RuleCase, engine: RuleEngine, ncci_engines: Callable[[RuleCase], RuleEngine]) -> None:
    if case.ncci_tables is not None:
        engine = ncci_engines(case)
    parsed = parse_claim_event(case.raw())
    assert isinstance(parsed, ParsedClaim), f"{case.file}: case {case.name} is not a valid claim: {parsed}"

    verdict = engine.validate(parsed.claim, validated_at=VALIDATED_AT, source=None)

    found = sorted(finding.rule_id for finding in verdict.findings)
    assert found == sorted(case.findings), "\n".join(f"{f.rule_id}: {f.message}" for f in verdict.findings)
    if case.not_evaluated is not None:
        assert sorted({skip.rule_id for skip in verdict.not_evaluated}) == sorted(set(case.not_evaluated))
    if case.outcome is not None:
        assert verdict.outcome.value == case.outcome
    for rule_id, text in case.message_contains.items():
        messages = [finding.message for finding in verdict.findings if finding.rule_id == rule_id]
        assert any(text in message for message in messages), messages


def _template(rule_id: str, profile_codes: set[str]) -> str:
    prefix, _, rest = rule_id.partition(".")
    return "{code}." + rest if prefix in profile_codes else rule_id


def test_every_rule_has_a_triggering_case(engine: RuleEngine) -> None:
    profile_codes = set(engine.policy.profiles)
    triggered = {_template(rule_id, profile_codes) for case in CASES for rule_id in case.findings}

    # History rules judge sequences of claims: tests/rules/test_history_sequences.py triggers each of them.
    untriggered = engine.policy.rule_templates - triggered - set(SCHEMA_RULES) - set(HISTORY_RULES)

    assert untriggered == set()


def test_every_profile_has_a_passing_case(engine: RuleEngine) -> None:
    passing_codes = {
        line["procedure_code"]
        for case in CASES
        if case.outcome == "pass" and not case.findings
        for line in case.document["lines"]
    }

    assert set(engine.policy.profiles) <= passing_codes
