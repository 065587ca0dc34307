"""Routing is a pure function: each evaluation of a record gives exactly one output record."""

from __future__ import annotations

import pytest

from schemas.parsing import DeadLetterReason
from schemas.verdict import Outcome
from tests.worker.fakes import FakeRecord
from worker.evaluator import DeadLettered, Verdict, record_item
from worker.routing import (
    DLQ_ERROR,
    DLQ_REASON,
    DLQ_SOURCE_OFFSET,
    DLQ_SOURCE_PARTITION,
    DLQ_SOURCE_TOPIC,
    DLQ_WORKER_ID,
    OutputRecord,
    Routes,
    route,
)

pytestmark = pytest.mark.timeout(10)

ROUTES = Routes(pass_topic="ok", fail_topic="bad", dlq_topic="dlq", worker_id="w-7", max_record_bytes=1 << 20)
RECORD = FakeRecord("in", 2, 41, 1_700_000_000_000, b"input-key", b"{...}", (("trace", b"t-1"),))


@pytest.mark.parametrize(
    ("outcome", "topic"), [(Outcome.PASS, "ok"), (Outcome.NOT_APPLICABLE, "ok"), (Outcome.FAIL, "bad")]
)
def test_a_verdict_goes_to_the_topic_of_its_outcome_keyed_by_its_claim_id(outcome: Outcome, topic: str) -> None:
    verdict = Verdict("CLM-1", outcome, b'{"verdict":1}', (), 0.001)

    assert route(RECORD, verdict, ROUTES) == OutputRecord(topic, b"CLM-1", b'{"verdict":1}', None)


def test_a_dead_letter_is_the_original_record_plus_its_reason_and_coordinates() -> None:
    letter = DeadLettered(DeadLetterReason.NOT_JSON, "Expecting value: line 1 column 1 (char 0)", 0.001)

    output = route(RECORD, letter, ROUTES)

    assert (output.topic, output.key, output.value) == ("dlq", b"input-key", b"{...}")
    assert output.headers == [
        ("trace", b"t-1"),
        (DLQ_REASON, b"not_json"),
        (DLQ_ERROR, b"Expecting value: line 1 column 1 (char 0)"),
        (DLQ_SOURCE_TOPIC, b"in"),
        (DLQ_SOURCE_PARTITION, b"2"),
        (DLQ_SOURCE_OFFSET, b"41"),
        (DLQ_WORKER_ID, b"w-7"),
    ]


def test_a_dead_letter_error_is_cut_to_200_characters() -> None:
    letter = DeadLettered(DeadLetterReason.NOT_JSON, "x" * 500, 0.001)

    headers = dict(route(RECORD, letter, ROUTES).headers or [])

    assert headers[DLQ_ERROR] == b"x" * 200


def test_a_record_without_key_and_value_gets_an_empty_dead_letter_value() -> None:
    record = FakeRecord("in", 0, 0, 0, None, None)

    output = route(record, DeadLettered(DeadLetterReason.NOT_JSON, "no value", 0.0), ROUTES)

    assert (output.key, output.value) == (None, b"")


def test_headers_travel_with_the_record_to_the_evaluator() -> None:
    assert record_item(RECORD) == (b"{...}", "in", 2, 41, (("trace", b"t-1"),))
