"""The hostile-input corpus and a Hypothesis sample through a real `claims-worker run`, which must keep going.

Each input must get exactly one output, the one its manifest entry (or, for the Hypothesis sample, the offline
path) says; valid claims published after all of it must still be validated; the worker must stop cleanly. A dead
letter carries the original record, except where that copy could not be written back (values near the broker's
limit): then `dlq.omitted` says what was left out. Peak RSS of the worker goes to reports/hostile-input.json.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from rules.engine import load_engine
from rules.pipeline import evaluate_record
from tests.reliability.hostile_corpus import entries, outcome_of, outcome_of_output
from tests.reliability.kafka_helpers import answers_by_input, hostile_topics, peak_rss_mb, publish_large
from tests.reliability.measure_rss import record
from tests.reliability.strategies import BIRTH_DATE, MEMBER_ID, claim_like_bytes
from tests.worker import claims
from tests.worker.conftest import WorkerProcess, read_outputs
from worker.exit_codes import ExitCode
from worker.routing import DLQ_OMITTED

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(300)]

SENTINELS = 10  # valid claims published after the hostile ones: proof the worker kept going


def sentinels() -> list[tuple[bytes | None, bytes]]:
    return [(f"after-{index}".encode(), claims.valid(f"after-{index}")) for index in range(SENTINELS)]


def test_every_corpus_entry_ends_as_its_expected_output_while_the_worker_keeps_going(
    kafka_bootstrap: str, new_topic: Callable[..., str], tmp_path: Path
) -> None:
    # Given the whole corpus on the input topic, then a few valid claims
    corpus = entries()
    topics = hostile_topics(new_topic)
    data = [entry.data() for entry in corpus]
    keyed = [(entry.name.encode(), raw) for entry, raw in zip(corpus, data, strict=True)]
    placed = publish_large(kafka_bootstrap, topics.input, keyed + sentinels())

    # When one worker processes it
    worker = WorkerProcess(kafka_bootstrap, topics, tmp_path / "worker.log")
    outputs = read_outputs(kafka_bootstrap, topics.outputs, expected=len(placed), timeout_s=180)
    assert worker.process.poll() is None, f"the worker stopped on hostile input:\n{worker.logs()[-3000:]}"
    rss_mb = peak_rss_mb(worker.process.pid)
    exit_code = worker.stop()

    # Then each input has exactly one output, of the expected kind, and the valid claims after them were validated
    answers = answers_by_input(topics, outputs)
    assert {coordinates: len(found) for coordinates, found in answers.items()} == dict.fromkeys(placed, 1)
    omitted = []
    for entry, raw, coordinates in zip(corpus, data, placed, strict=False):
        answer = answers[coordinates][0]
        assert outcome_of_output(answer.kind, answer.output.headers, answer.output.value) == entry.expect, entry.name
        if answer.kind == "dlq":
            if DLQ_OMITTED in answer.output.headers:
                omitted.append(entry.name)
                assert answer.output.headers[DLQ_OMITTED] == f"value={len(raw)}".encode()
                assert answer.output.value == b""
            else:
                assert answer.output.value == raw, entry.name
    # Only values that the worker's limit (1 MiB) already refuses are left out of their dead letter.
    assert set(omitted) == {entry.name for entry, raw in zip(corpus, data, strict=True) if len(raw) > 1024 * 1024}
    assert {answers[coordinates][0].kind for coordinates in placed[len(corpus) :]} <= {"pass", "fail"}
    assert exit_code == ExitCode.OK
    record(
        "kafka_corpus",
        {"records": len(placed), "largest_record_bytes": max(map(len, data)), "worker_peak_rss_mb": round(rss_mb, 1)},
    )


@settings(
    max_examples=1,
    deadline=None,
    database=None,
    phases=[Phase.generate],  # one real run; shrinking would rerun the whole Kafka round trip
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(sample=st.lists(claim_like_bytes(), min_size=200, max_size=200))
def test_a_hypothesis_sample_gets_through_kafka_the_outcomes_of_the_offline_path(
    kafka_bootstrap: str, new_topic: Callable[..., str], tmp_path_factory: pytest.TempPathFactory, sample: list[bytes]
) -> None:
    # Given 200 claim-like documents (and then valid claims) on the input topic
    topics = hostile_topics(new_topic, input_partitions=3)
    placed = publish_large(kafka_bootstrap, topics.input, [(None, raw) for raw in sample] + sentinels())
    engine = load_engine()
    validated_at = dt.datetime.now(dt.UTC)
    expected = [outcome_of(evaluate_record(raw, engine, validated_at=validated_at)) for raw in sample]

    # When the worker processes them (at debug level: the most it ever says)
    worker = WorkerProcess(kafka_bootstrap, topics, tmp_path_factory.mktemp("hypo") / "worker.log", log_level="debug")
    outputs = read_outputs(kafka_bootstrap, topics.outputs, expected=len(placed), timeout_s=180)
    assert worker.process.poll() is None, f"the worker stopped on hostile input:\n{worker.logs()[-3000:]}"
    rss_mb = peak_rss_mb(worker.process.pid)
    exit_code = worker.stop()

    # Then each gets exactly one output, the offline path's outcome; the worker keeps going and says no patient data
    answers = answers_by_input(topics, outputs)
    assert {coordinates: len(found) for coordinates, found in answers.items()} == dict.fromkeys(placed, 1)
    for raw, outcome, coordinates in zip(sample, expected, placed, strict=False):
        answer = answers[coordinates][0]
        assert outcome_of_output(answer.kind, answer.output.headers, answer.output.value) == outcome, raw[:200]
        headers = b"".join(answer.output.headers.values())
        shown = headers + (answer.output.value if answer.kind != "dlq" else b"")
        assert MEMBER_ID.encode() not in shown
        assert BIRTH_DATE.encode() not in shown
    assert exit_code == ExitCode.OK
    logs = worker.logs()
    assert MEMBER_ID not in logs
    assert BIRTH_DATE not in logs
    record("kafka_hypothesis_sample", {"records": len(placed), "worker_peak_rss_mb": round(rss_mb, 1)})
