"""The history oracle (chaos.oracle): its fold gives the rules' verdicts over the committed repartition order,
and its comparison catches every way a published verdict can be wrong (a false CARC 18 above all)."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest

from chaos.oracle import Expected, compare, fold, history_rule_ids
from chaos.traffic import EXAMPLES
from rules.engine import RuleEngine, load_engine
from schemas.verdict import ClaimValidated, SourceRecord
from tests.worker.conftest import HISTORY_KEY
from worker.evaluator import Deferred, evaluate_claim_bytes
from worker.history.keys import MemberKeyer
from worker.topic_reader import TopicRecord

pytestmark = pytest.mark.timeout(60)

REPARTITION = "rep"
INPUT = "in"
AT = dt.datetime(2026, 11, 27, 12, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def engine() -> RuleEngine:
    return load_engine()


def example(claim_id: str, **changes: Any) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(EXAMPLES.read_text(encoding="utf-8").splitlines()[0])
    document.update(claim_id=claim_id, event_id=f"evt-{claim_id}", **changes)
    return document


def repartitioned(engine: RuleEngine, documents: list[dict[str, Any]]) -> list[TopicRecord]:
    """The repartition records stage A writes for `documents` (input offsets 0, 1, ...; one partition)."""
    records = []
    for offset, document in enumerate(documents):
        evaluation = evaluate_claim_bytes(
            engine,
            json.dumps(document).encode(),
            validated_at=AT + dt.timedelta(seconds=offset),
            max_bytes=1 << 20,
            source=SourceRecord(topic=INPUT, partition=0, offset=offset),
            history=MemberKeyer(HISTORY_KEY),
        )
        assert isinstance(evaluation, Deferred)
        records.append(TopicRecord(REPARTITION, 0, offset, evaluation.member_key.encode(), evaluation.value, {}))
    return records


def rules_of(expected: list[Expected], engine: RuleEngine) -> list[list[str]]:
    profiles = frozenset(engine.policy.profiles)
    return [history_rule_ids(entry.verdict, profiles) for entry in expected]


def sequence(engine: RuleEngine) -> list[Expected]:
    # A; B, an exact duplicate of A; A again (a resend); the void of B; C, another exact duplicate of A
    documents = [
        example("CLM-A"),
        example("CLM-B"),
        example("CLM-A"),
        example("CLM-B-VOID", frequency_code="8", original_claim_id="CLM-B"),
        example("CLM-C"),
    ]
    return fold(repartitioned(engine, documents), engine)


def test_the_fold_flags_duplicates_and_never_a_claim_against_itself(engine: RuleEngine) -> None:
    expected = sequence(engine)

    exact = ["J9353.DUPLICATE.EXACT", "J9353.DUPLICATE.EXACT"]
    assert rules_of(expected, engine) == [[], exact, exact, [], exact]
    assert [entry.verdict.outcome.value for entry in expected] == ["pass", "fail", "fail", "not_applicable", "fail"]


def test_the_fold_follows_offsets_not_the_order_records_are_read_in(engine: RuleEngine) -> None:
    records = repartitioned(engine, [example("CLM-A"), example("CLM-B")])

    expected = fold(reversed(records), engine)

    assert rules_of(expected, engine)[0] == []
    assert expected[1].verdict.claim_id == "CLM-B"


def test_published_verdicts_equal_to_the_fold_pass(engine: RuleEngine) -> None:
    expected = sequence(engine)

    report = compare(expected, [entry.verdict for entry in expected], engine)

    assert report.problems(exactly_once=True) == []
    assert (report.records, report.verdicts, report.mismatched) == (5, 5, 0)
    assert sorted(report.flagged_published) == ["CLM-A", "CLM-B", "CLM-C"]
    assert report.summary()["exact_duplicate_claims"] == 3


def test_an_exact_duplicate_the_fold_does_not_give_is_a_false_carc_18(engine: RuleEngine) -> None:
    # Given the verdicts, the first one (CLM-A, the original) flagged as an exact duplicate of itself
    expected = sequence(engine)
    wrong_finding = next(f for f in expected[1].verdict.findings if f.rule_id == "J9353.DUPLICATE.EXACT")
    first = expected[0].verdict
    flagged: ClaimValidated = first.model_copy(update={"findings": [*first.findings, wrong_finding]})
    published = [flagged, *(entry.verdict for entry in expected[1:])]

    report = compare(expected, published, engine)

    assert (report.mismatched, report.false_exact_duplicates) == (1, 1)
    assert any("false CARC 18" in problem for problem in report.problems(exactly_once=False))


def test_a_missing_history_finding_is_a_mismatch_and_changes_the_flagged_set(engine: RuleEngine) -> None:
    expected = sequence(engine)
    unflagged = expected[1].verdict.model_copy(update={"findings": [], "outcome": expected[0].verdict.outcome})

    report = compare(expected, [expected[0].verdict, unflagged, *(e.verdict for e in expected[2:])], engine)

    assert (report.mismatched, report.false_exact_duplicates) == (1, 0)
    assert not report.flagged_sets_equal
    assert any(
        "CLM-B" in problem and "flagged unlike the fold" in problem for problem in report.problems(exactly_once=True)
    )


def test_records_without_a_verdict_and_verdicts_answered_twice_are_counted(engine: RuleEngine) -> None:
    expected = sequence(engine)
    published = [entry.verdict for entry in expected[1:]] + [expected[1].verdict]

    report = compare(expected, published, engine)

    assert (report.unanswered, report.doubled) == (1, 1)
    assert any("more than one verdict" in problem for problem in report.problems(exactly_once=True))
    assert not any("more than one verdict" in problem for problem in report.problems(exactly_once=False))


def test_a_verdict_of_a_deferred_claim_that_answers_no_record_is_stray(engine: RuleEngine) -> None:
    expected = sequence(engine)
    other_batch = expected[1].verdict.model_copy(update={"validated_at": AT - dt.timedelta(days=1)})

    report = compare(expected, [*(entry.verdict for entry in expected), other_batch], engine)

    assert report.stray == 1
