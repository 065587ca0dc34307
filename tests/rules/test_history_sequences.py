"""Claim-history rules on sequences of claims (history/sequences.yaml), folded over an in-memory history.

The fold here is the rules' own contract: each claim is judged against the member's entries so far
(`rules.history.judge`), its verdict gets the history findings (`RuleEngine.with_history`), then the entries of
the claims it replaces are removed and its own recorded. The worker's store-backed stage is tested on the same
sequences in tests/worker/history/.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from rules.engine import RuleEngine
from rules.history import RULES as HISTORY_RULES
from rules.history import facts_of, judge
from schemas.history import HistoryLine
from schemas.parsing import ParsedClaim, parse_claim_event
from schemas.verdict import ClaimValidated
from tests.rules.cases_loader import apply_patch, load_bases
from tests.rules.conftest import VALIDATED_AT

SEQUENCES_FILE = Path(__file__).parent / "history" / "sequences.yaml"


@dataclass(frozen=True)
class SequenceClaim:
    document: dict[str, Any]
    expect: list[str]
    outcome: str | None
    message_contains: dict[str, str]


@dataclass(frozen=True)
class Sequence:
    name: str
    claims: list[SequenceClaim]


def load_sequences() -> list[Sequence]:
    bases = load_bases()
    content = yaml.safe_load(SEQUENCES_FILE.read_text(encoding="utf-8"))
    sequences = []
    for entry in content["sequences"]:
        claims = []
        for number, claim in enumerate(entry["claims"], start=1):
            unknown = set(claim) - {"base", "patch", "expect", "outcome", "message_contains"}
            if unknown:
                raise ValueError(f"sequence {entry['name']} claim {number}: unknown keys {sorted(unknown)}")
            document = apply_patch(bases[claim["base"]], claim.get("patch") or {})
            document["event_id"] = f"evt-seq-{entry['name']}-{number}"
            claims.append(
                SequenceClaim(
                    document, list(claim["expect"]), claim.get("outcome"), claim.get("message_contains") or {}
                )
            )
        sequences.append(Sequence(entry["name"], claims))
    return sequences


SEQUENCES = load_sequences()


def member_key(document: dict[str, Any]) -> str:
    return "test-member-" + str(document["patient"]["member_id"])


def fold(engine: RuleEngine, documents: list[dict[str, Any]]) -> list[ClaimValidated]:
    """The verdicts of `documents` judged in order against an in-memory history."""
    history: dict[str, list[HistoryLine]] = defaultdict(list)
    verdicts = []
    for document in documents:
        parsed = parse_claim_event(json.dumps(document).encode())
        assert isinstance(parsed, ParsedClaim), parsed
        claim = parsed.claim
        verdict = engine.validate(claim, validated_at=VALIDATED_AT, source=None)
        filed_on = claim.submitted_on or VALIDATED_AT.date()
        facts = facts_of(claim, engine.policy, member_key=member_key(document), filed_on=filed_on)
        assert facts is not None
        entries = history[facts.member_key]
        judgement = judge(facts, entries, engine.policy)
        verdicts.append(engine.with_history(verdict, judgement))
        entries[:] = [entry for entry in entries if entry.claim_id not in judgement.removed_claims]
        entries.extend(judgement.recorded)
    return verdicts


@pytest.mark.parametrize("sequence", SEQUENCES, ids=[sequence.name for sequence in SEQUENCES])
def test_history_sequence(sequence: Sequence, engine: RuleEngine) -> None:
    verdicts = fold(engine, [claim.document for claim in sequence.claims])

    for number, (claim, verdict) in enumerate(zip(sequence.claims, verdicts, strict=True), start=1):
        history_rules = {_template(rule_id, set(engine.policy.profiles)) for rule_id in HISTORY_RULES}
        found = sorted(
            f.rule_id for f in verdict.findings if _template(f.rule_id, set(engine.policy.profiles)) in history_rules
        )
        context = f"claim {number} ({claim.document['claim_id']}): " + "; ".join(
            f"{f.rule_id}: {f.message}" for f in verdict.findings
        )
        assert found == sorted(claim.expect), context
        if claim.outcome is not None:
            assert verdict.outcome.value == claim.outcome, context
        for rule_id, text in claim.message_contains.items():
            messages = [finding.message for finding in verdict.findings if finding.rule_id == rule_id]
            assert any(text in message for message in messages), messages


def test_every_history_rule_is_triggered_by_a_sequence(engine: RuleEngine) -> None:
    profiles = set(engine.policy.profiles)
    triggered = {
        _template(rule_id, profiles) for sequence in SEQUENCES for claim in sequence.claims for rule_id in claim.expect
    }

    assert set(HISTORY_RULES) - triggered == set()


def test_a_void_gets_no_findings_but_the_history_ones(engine: RuleEngine) -> None:
    [sequence] = [sequence for sequence in SEQUENCES if sequence.name == "void_removes_its_original"]
    void_document = dict(sequence.claims[1].document, submitted_on="2020-01-01")  # also far too late to file

    verdicts = fold(engine, [sequence.claims[0].document, void_document])

    assert verdicts[1].outcome.value == "not_applicable"
    assert verdicts[1].findings == []
    assert verdicts[1].not_evaluated == []


def test_findings_name_the_other_claim_but_never_the_member(engine: RuleEngine) -> None:
    [sequence] = [sequence for sequence in SEQUENCES if sequence.name == "exact_duplicate_on_another_claim"]

    verdicts = fold(engine, [claim.document for claim in sequence.claims])

    text = verdicts[1].model_dump_json()
    assert "CLM-A" in text
    assert sequence.claims[0].document["patient"]["member_id"] not in text


def _template(rule_id: str, profile_codes: set[str]) -> str:
    prefix, _, rest = rule_id.partition(".")
    return "{code}." + rest if prefix in profile_codes else rule_id
