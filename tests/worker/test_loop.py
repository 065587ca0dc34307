"""The loop on in-memory fakes: routing, commit after acknowledgement, failures, exactly-once, shutdown."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from tests.worker import claims
from tests.worker.conftest import DLQ, FAIL, INPUT, PASS, Harness, json_lines
from tests.worker.fakes import FakeProducer
from worker.exit_codes import ExitCode
from worker.kafka_io import (
    BrokerUnavailableError,
    CommitRejectedError,
    KafkaConfigError,
    KafkaIOError,
    ProducerFencedError,
    TopicPartition,
)
from worker.observer import Observer
from worker.routing import (
    DLQ_ERROR,
    DLQ_REASON,
    DLQ_SOURCE_OFFSET,
    DLQ_SOURCE_PARTITION,
    DLQ_SOURCE_TOPIC,
    DLQ_WORKER_ID,
)
from worker.sink import AtLeastOnceSink, ExactlyOnceSink

pytestmark = pytest.mark.timeout(30)

MakeHarness = Callable[..., Harness]


def publish_mixed(h: Harness) -> None:
    h.publish(claims.valid("PASS-1"), key=b"PASS-1", partition=0)
    h.publish(claims.valid("FAIL-1"), key=b"FAIL-1", partition=0)
    h.publish(claims.valid("NA-1"), key=b"NA-1", partition=1)
    h.publish(claims.schema_failure("SCHEMA-1"), key=b"SCHEMA-1", partition=1)
    h.publish(claims.malformed("BAD-1"), key=b"BAD-1", partition=0)
    h.publish(claims.unknown_version("V2-1"), key=b"V2-1", partition=1)


def verdicts(h: Harness, topic: str) -> dict[str, str]:
    return {json.loads(r.value)["claim_id"]: json.loads(r.value)["outcome"] for r in h.broker.records(topic)}


@pytest.mark.parametrize("exactly_once", [False, True], ids=["at_least_once", "exactly_once"])
def test_each_record_becomes_exactly_one_output_on_the_topic_of_its_outcome(
    make_harness: MakeHarness, exactly_once: bool
) -> None:
    h = make_harness(exactly_once=exactly_once)
    publish_mixed(h)

    h.drain()

    assert verdicts(h, PASS) == {"PASS-1": "pass", "NA-1": "not_applicable"}
    assert verdicts(h, FAIL) == {"FAIL-1": "fail", "SCHEMA-1": "fail"}
    reasons = {r.key: dict(r.headers)[DLQ_REASON] for r in h.broker.records(DLQ)}
    assert reasons == {b"BAD-1": b"not_json", b"V2-1": b"unsupported_schema_version"}
    assert h.broker.committed == {TopicPartition(INPUT, 0): 3, TopicPartition(INPUT, 1): 3}


def test_verdict_is_keyed_by_claim_id_and_names_its_source_record(make_harness: MakeHarness) -> None:
    h = make_harness()
    h.publish(claims.valid("NA-7"), key=b"some-other-key", partition=1)

    h.drain()

    [record] = h.broker.records(PASS)
    assert record.key == b"NA-7"
    assert json.loads(record.value)["source"] == {"topic": INPUT, "partition": 1, "offset": 0}


def test_dead_letter_keeps_the_original_bytes_and_headers_and_adds_its_own(make_harness: MakeHarness) -> None:
    h = make_harness()
    original = claims.malformed("BAD-2")
    h.publish(claims.valid("NA-1"), key=b"NA-1", partition=1)
    h.publish(original, key=b"BAD-2", partition=1)

    h.drain()

    [letter] = h.broker.records(DLQ)
    headers = dict(letter.headers)
    assert (letter.key, letter.value) == (b"BAD-2", original)
    assert headers["trace"] == b"abc"
    assert headers[DLQ_REASON] == b"not_json"
    assert headers[DLQ_ERROR]
    assert (headers[DLQ_SOURCE_TOPIC], headers[DLQ_SOURCE_PARTITION], headers[DLQ_SOURCE_OFFSET]) == (
        INPUT.encode(),
        b"1",
        b"1",
    )
    assert headers[DLQ_WORKER_ID] == b"worker-test-1"


def test_a_record_without_value_is_dead_lettered_as_not_json(make_harness: MakeHarness) -> None:
    h = make_harness()
    h.publish(None, key=b"TOMBSTONE")

    h.drain()

    [letter] = h.broker.records(DLQ)
    assert (letter.key, letter.value, dict(letter.headers)[DLQ_REASON]) == (b"TOMBSTONE", None, b"not_json")


def test_offsets_are_committed_once_per_batch_after_the_outputs_are_acknowledged(make_harness: MakeHarness) -> None:
    h = make_harness(batch_max_records=4)
    for index in range(6):
        h.publish(claims.valid(f"NA-{index}"), partition=0)

    h.drain()

    assert h.broker.kinds() == ["acked", "commit", "acked", "commit"]
    assert [event.detail for event in h.broker.events if event.kind == "commit"] == [
        {TopicPartition(INPUT, 0): 4},
        {TopicPartition(INPUT, 0): 6},
    ]


def test_rules_raising_for_one_claim_dead_letters_it_as_internal_error_and_the_loop_goes_on(
    make_harness: MakeHarness,
) -> None:
    h = make_harness()
    h.publish(claims.valid("BOOM-1"), key=b"BOOM-1")
    h.publish(claims.valid("NA-2"), key=b"NA-2")

    h.drain()

    [letter] = h.broker.records(DLQ)
    assert dict(letter.headers)[DLQ_REASON] == b"internal_error"
    assert dict(letter.headers)[DLQ_ERROR] == b"evaluation failed: RuntimeError"
    assert letter.value == claims.valid("BOOM-1")
    assert verdicts(h, PASS) == {"NA-2": "not_applicable"}
    assert h.metric("claims_dead_letters_total", reason="internal_error") == 1


def test_a_verdict_that_cannot_be_written_is_dead_lettered_too(make_harness: MakeHarness) -> None:
    # The one guard covers parsing, the rules and the verdict's serialisation alike.
    h = make_harness()
    h.publish(claims.valid("UNWRITABLE-1"), key=b"UNWRITABLE-1")
    h.publish(claims.valid("NA-1"), key=b"NA-1")

    h.drain()

    [letter] = h.broker.records(DLQ)
    assert dict(letter.headers)[DLQ_ERROR] == b"evaluation failed: PydanticSerializationError"
    assert verdicts(h, PASS) == {"NA-1": "not_applicable"}


def test_a_failed_flush_commits_nothing_and_the_batch_is_processed_again(make_harness: MakeHarness) -> None:
    h = make_harness()
    publish_mixed(h)
    h.producer.fail_next["flush"].append(BrokerUnavailableError("broker down"))

    h.loop.run_once()

    assert h.broker.committed == {}
    assert "commit" not in h.broker.kinds()
    assert sorted(h.consumer.seeks) == [(TopicPartition(INPUT, 0), 0), (TopicPartition(INPUT, 1), 0)]
    assert not h.health.ready
    assert h.metric("claims_batch_retries_total", stage="produce") == 1

    h.drain()

    assert len(h.broker.records(PASS)) + len(h.broker.records(FAIL)) + len(h.broker.records(DLQ)) == 6
    assert h.broker.committed == {TopicPartition(INPUT, 0): 3, TopicPartition(INPUT, 1): 3}
    assert h.health.ready


def test_a_failed_dead_letter_send_commits_nothing(make_harness: MakeHarness) -> None:
    h = make_harness(replaceable_producer=False)
    h.publish(claims.valid("NA-1"), key=b"NA-1")
    h.publish(claims.malformed("BAD-1"), key=b"BAD-1")
    h.producer.fail_on_send[2] = BrokerUnavailableError("dlq partition offline")

    h.loop.run_once()

    assert h.broker.committed == {}
    assert h.broker.records(DLQ) == []


def test_a_non_retriable_producer_error_gets_one_fresh_producer(make_harness: MakeHarness) -> None:
    h = make_harness()
    h.publish(claims.valid("NA-1"), key=b"NA-1")
    h.producer.fail_next["flush"].append(KafkaIOError("MessageSizeTooLargeError"))

    h.drain()

    assert len(h.producers) == 2
    assert h.producer.closed
    assert verdicts(h, PASS) == {"NA-1": "not_applicable"}
    assert h.broker.committed == {TopicPartition(INPUT, 0): 1}


def test_a_second_non_retriable_producer_error_in_a_row_stops_the_loop_without_commit(
    make_harness: MakeHarness,
) -> None:
    h = make_harness(new_producers_fail_with=KafkaIOError("MessageSizeTooLargeError"))
    h.publish(claims.valid("NA-1"), key=b"NA-1")
    h.producer.fail_next["flush"].append(KafkaIOError("MessageSizeTooLargeError"))

    exit_code = h.loop.run()

    assert exit_code == ExitCode.FAILURE
    assert len(h.producers) == 2
    assert h.broker.committed == {}
    assert h.broker.records(PASS) == []
    assert h.consumer.closed
    assert h.producers[-1].closed


def test_a_broker_rejecting_the_configuration_stops_the_loop_with_the_config_exit_code(
    make_harness: MakeHarness,
) -> None:
    h = make_harness()
    h.publish(claims.valid("NA-1"), key=b"NA-1")
    h.producer.fail_next["flush"].append(KafkaConfigError("TopicAuthorizationFailedError"))

    assert h.loop.run() == ExitCode.CONFIG
    assert h.broker.committed == {}


def test_broker_unavailable_longer_than_the_outage_bound_exits_with_broker_outage(make_harness: MakeHarness) -> None:
    h = make_harness()
    h.consumer.fail_next["end_offsets"] = [BrokerUnavailableError("no broker")] * 100
    readiness: list[bool] = []

    def each_poll(_: object) -> None:
        readiness.append(h.health.ready)
        h.clock.advance(15.0)

    h.consumer.on_poll = each_poll

    assert h.loop.run() == ExitCode.BROKER_OUTAGE
    assert readiness[0] is True
    assert readiness[1:]
    assert not any(readiness[1:])


def test_readiness_comes_back_when_the_broker_answers_again(make_harness: MakeHarness) -> None:
    h = make_harness()
    h.consumer.fail_next["end_offsets"] = [BrokerUnavailableError("no broker")] * 2

    for _ in range(2):
        h.loop.run_once()
    assert not h.health.ready

    h.loop.run_once()
    assert h.health.ready


def test_a_rejected_commit_keeps_the_offsets_pending_until_the_partition_is_revoked(make_harness: MakeHarness) -> None:
    h = make_harness()
    h.publish(claims.valid("NA-1"), partition=0)
    h.publish(claims.valid("NA-2"), partition=1)
    h.consumer.fail_next["commit"].append(CommitRejectedError("RebalanceInProgressError"))

    h.loop.run_once()

    assert h.broker.committed == {}
    assert len(h.broker.records(PASS)) == 2  # outputs stay published
    assert h.pending() == {TopicPartition(INPUT, 0): 1, TopicPartition(INPUT, 1): 1}

    h.consumer.revoke({TopicPartition(INPUT, 1)})

    assert h.broker.committed == {TopicPartition(INPUT, 1): 1}
    assert h.pending() == {TopicPartition(INPUT, 0): 1}
    assert h.metric("claims_commit_failures_total") == 1
    assert h.metric("claims_assigned_partitions", topic=INPUT) == 1


def test_pending_offsets_of_lost_partitions_are_dropped_not_committed(make_harness: MakeHarness) -> None:
    h = make_harness()
    h.publish(claims.valid("NA-1"), partition=0)
    h.consumer.fail_next["commit"].append(CommitRejectedError("IllegalGenerationError"))
    h.loop.run_once()

    h.consumer.revoke({TopicPartition(INPUT, 0)}, lost=True)

    assert h.broker.committed == {}
    assert h.pending() == {}
    assert h.metric("claims_rebalances_total", event="lost") == 1


def test_pending_offsets_go_with_the_next_successful_commit(make_harness: MakeHarness) -> None:
    h = make_harness()
    h.publish(claims.valid("NA-1"), partition=0)
    h.consumer.fail_next["commit"].append(BrokerUnavailableError("coordinator moving"))
    h.loop.run_once()
    h.publish(claims.valid("NA-2"), partition=1)

    h.drain()

    assert h.broker.committed == {TopicPartition(INPUT, 0): 1, TopicPartition(INPUT, 1): 1}
    assert len(h.broker.records(PASS)) == 2


def test_exactly_once_commits_the_offsets_inside_the_transaction(make_harness: MakeHarness) -> None:
    h = make_harness(exactly_once=True)
    publish_mixed(h)

    h.drain()

    assert h.broker.kinds() == ["txn_begin", "txn_commit"]
    [commit] = [event.detail for event in h.broker.events if event.kind == "txn_commit"]
    assert commit == (6, {TopicPartition(INPUT, 0): 3, TopicPartition(INPUT, 1): 3})
    assert h.metric("claims_transactions_total", outcome="committed") == 1


def test_exactly_once_failed_commit_aborts_rewinds_and_publishes_each_output_once(make_harness: MakeHarness) -> None:
    h = make_harness(exactly_once=True)
    publish_mixed(h)
    h.producer.fail_next["commit_transaction"].append(BrokerUnavailableError("coordinator not available"))

    h.loop.run_once()

    assert h.broker.kinds() == ["txn_begin", "txn_abort"]
    assert h.broker.records(PASS) == []
    assert h.broker.committed == {}
    assert sorted(h.consumer.seeks) == [(TopicPartition(INPUT, 0), 0), (TopicPartition(INPUT, 1), 0)]

    h.drain()

    assert verdicts(h, PASS) == {"PASS-1": "pass", "NA-1": "not_applicable"}
    assert verdicts(h, FAIL) == {"FAIL-1": "fail", "SCHEMA-1": "fail"}
    assert len(h.broker.records(DLQ)) == 2
    assert h.metric("claims_transactions_total", outcome="aborted") == 1


def test_exactly_once_failed_abort_replaces_the_producer(make_harness: MakeHarness) -> None:
    h = make_harness(exactly_once=True)
    h.publish(claims.valid("NA-1"), key=b"NA-1")
    h.producer.fail_next["commit_transaction"].append(KafkaIOError("InvalidProducerEpochError"))
    h.producer.fail_next["abort_transaction"].append(KafkaIOError("IllegalStateError"))

    h.drain()

    assert len(h.producers) == 2
    assert h.producers[0].closed
    assert verdicts(h, PASS) == {"NA-1": "not_applicable"}


def test_exactly_once_fenced_producer_stops_the_worker(make_harness: MakeHarness) -> None:
    h = make_harness(exactly_once=True)
    h.publish(claims.valid("NA-1"), key=b"NA-1")
    h.producer.fail_next["commit_transaction"].append(ProducerFencedError("ProducerFencedError"))

    assert h.loop.run() == ExitCode.FAILURE
    assert h.broker.committed == {}
    assert h.broker.records(PASS) == []
    assert len(h.producers) == 1


def test_a_stop_requested_mid_batch_finishes_and_commits_that_batch_then_stops(make_harness: MakeHarness) -> None:
    h = make_harness(batch_max_records=3)
    for index in range(5):
        h.publish(claims.valid(f"NA-{index}"), partition=0)
    h.producer.on_send = lambda producer: h.shutdown.request("test") if producer.sent == 2 else None

    assert h.loop.run() == ExitCode.OK

    assert h.consumer.polls == 1
    assert len(h.broker.records(PASS)) == 3
    assert h.broker.committed == {TopicPartition(INPUT, 0): 3}
    assert h.consumer.closed
    assert h.producer.closed


def test_a_failing_observer_never_fails_a_claim(make_harness: MakeHarness, captured_logs: object) -> None:
    class BrokenObserver(Observer):
        def __getattribute__(self, name: str) -> Any:
            if name.startswith("_"):
                return super().__getattribute__(name)

            def hook(*args: object, **kwargs: object) -> None:
                raise RuntimeError("metrics backend down")

            return hook

    h = make_harness(observer=BrokenObserver())
    publish_mixed(h)

    h.drain()

    assert h.broker.committed == {TopicPartition(INPUT, 0): 3, TopicPartition(INPUT, 1): 3}
    assert len(h.broker.records(PASS)) + len(h.broker.records(FAIL)) + len(h.broker.records(DLQ)) == 6
    failed_hooks = {
        line["hook"] for line in json_lines(captured_logs.getvalue()) if line["event"] == "metrics.observer_failed"
    }  # type: ignore[attr-defined]
    assert {"batch_delivered", "commit_finished", "partitions_assigned"} <= failed_hooks


def test_metrics_count_what_was_processed(make_harness: MakeHarness) -> None:
    h = make_harness()
    publish_mixed(h)

    h.drain()

    assert h.metric("claims_consumed_total") == 6
    assert h.metric("claims_verdicts_total", outcome="pass") == 1
    assert h.metric("claims_verdicts_total", outcome="not_applicable") == 1
    assert h.metric("claims_verdicts_total", outcome="fail") == 2
    assert h.metric("claims_dead_letters_total", reason="not_json") == 1
    assert h.metric("claims_dead_letters_total", reason="unsupported_schema_version") == 1
    assert h.metric("claims_dead_letters_total", reason="too_large") == 0  # initialised at start-up
    assert h.metric("claims_findings_total", rule_id="TEST.UNITS", severity="error") == 1
    assert h.metric("claims_validation_duration_seconds_count") == 6
    assert h.metric("claims_end_to_end_latency_seconds_count") == 6
    assert h.metric("claims_batch_records_count") == 1
    assert h.metric("claims_commits_total") == 1
    assert h.metric("claims_consumer_lag_records", topic=INPUT, partition="0") == 0
    assert h.metric("claims_assigned_partitions", topic=INPUT) == 2
    assert h.metric("claims_last_successful_poll_timestamp_seconds") > 0
    assert h.metric("claims_build_info", version="test", ruleset_id="test-rules", ruleset_version="1.2.3") == 1


def test_logs_one_line_per_batch_and_dead_letters_with_coordinates_but_no_patient_data(
    make_harness: MakeHarness, captured_logs: object
) -> None:
    h = make_harness()
    publish_mixed(h)
    h.publish(claims.valid("BOOM-9"), key=b"BOOM-9", partition=1)

    h.drain()

    text = captured_logs.getvalue()  # type: ignore[attr-defined]
    lines = json_lines(text)
    [batch] = [line for line in lines if line["event"] == "batch.processed"]
    assert (batch["records"], batch["failed"], batch["dead_letters"], batch["partitions"]) == (7, 2, 3, [0, 1])
    letters = [line for line in lines if line["event"] == "claim.dead_lettered"]
    assert {(line["claim_id"], line["reason"], line["level"]) for line in letters} == {
        ("BAD-1", "not_json", "warning"),
        ("V2-1", "unsupported_schema_version", "warning"),
        ("BOOM-9", "internal_error", "warning"),
    }
    assert all({"topic", "partition", "offset"} <= line.keys() for line in letters)
    failed = [line for line in lines if line["event"] == "claim.failed"]
    assert {line["claim_id"] for line in failed} == {"FAIL-1", "SCHEMA-1"}
    assert claims.SECRET_MEMBER_PREFIX not in text
    assert claims.SECRET_BIRTH_DATE not in text
    assert claims.SECRET_VALID_BIRTH_DATE not in text


@pytest.mark.parametrize("transactional", [False, True])
def test_the_producer_must_match_the_delivery_mode(make_harness: MakeHarness, transactional: bool) -> None:
    h = make_harness()
    producer = FakeProducer(h.broker, transactional=transactional)
    sink = AtLeastOnceSink if transactional else ExactlyOnceSink
    with pytest.raises(ValueError, match="transaction"):
        sink(consumer=h.consumer, producer=producer)
