"""End to end against a real broker: `claims-worker run` as a subprocess, configured through the environment.

Every test uses fresh topics and its own consumer group. Waits are bounded; nothing asserts on timing.
"""

from __future__ import annotations

import dataclasses
import signal
import time
import uuid
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from kafka import KafkaConsumer
from kafka.structs import TopicPartition as KafkaTopicPartition

from tests.ports import free_port
from tests.worker import claims
from tests.worker.conftest import Topics, WorkerProcess, publish, read_outputs
from worker.kafka_io import KafkaConsumerAdapter, KafkaProducerAdapter, TopicPartition
from worker.observer import ObserverChain
from worker.rebalance import KafkaRebalanceListener, RebalanceHandler
from worker.routing import DLQ_REASON, DLQ_WORKER_ID
from worker.settings import load_settings
from worker.sink import AtLeastOnceSink, PendingOffsets
from worker.topic_reader import TopicRecord

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(240)]

StartWorker = Callable[..., WorkerProcess]
MakeTopics = Callable[..., Topics]


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def mixed_inputs(count_each: int) -> list[tuple[str, bytes | None, bytes]]:
    """(kind, key, value) for `count_each` claims of each kind, interleaved."""
    inputs = []
    for index in range(count_each):
        for kind, build in claims.KINDS.items():
            claim_id = f"{kind}-{index}"
            inputs.append((kind, claim_id.encode(), build(claim_id)))
    return inputs


def source_of(output: TopicRecord) -> tuple[int, int] | None:
    """(partition, offset) of the input an output answers: `source` of a verdict, headers of a dead letter."""
    answered = output.answers()
    return None if answered is None else answered[1:]


def wait_for_metric(worker: WorkerProcess, name: str, expected: float, timeout_s: float = 30.0) -> float:
    deadline = time.monotonic() + timeout_s
    value = worker.metric(name)
    while value != expected and time.monotonic() < deadline:
        time.sleep(0.1)
        value = worker.metric(name)
    return value


@pytest.mark.parametrize("delivery", ["at_least_once", "exactly_once"])
def test_every_input_ends_as_exactly_one_output_on_the_topic_of_its_outcome(
    kafka_bootstrap: str, worker_topics: MakeTopics, start_worker: StartWorker, delivery: str
) -> None:
    # Given a mixed set on a three-partition input topic
    topics = worker_topics(partitions=3)
    inputs = mixed_inputs(10)
    placed = publish(kafka_bootstrap, topics.input, [(key, value) for _, key, value in inputs])
    kind_at = {coordinates: kind for coordinates, (kind, _, _) in zip(placed, inputs, strict=True)}
    value_at = {coordinates: value for coordinates, (_, _, value) in zip(placed, inputs, strict=True)}

    # When one worker processes it
    worker = start_worker(topics, delivery=delivery, group_id=unique("g"), worker_id=unique("w"))
    outputs = read_outputs(kafka_bootstrap, topics.outputs, expected=len(inputs))

    # Then every input has exactly one output, on the topic its outcome or reason calls for
    assert Counter(source_of(output) for output in outputs) == Counter(dict.fromkeys(placed, 1))
    for output in outputs:
        coordinates = source_of(output)
        kind = kind_at[coordinates]
        if output.topic == topics.dlq:
            expected_reason = {"malformed": b"not_json", "unknown_version": b"unsupported_schema_version"}[kind]
            assert output.headers[DLQ_REASON] == expected_reason
            assert output.value == value_at[coordinates]
            assert output.headers[DLQ_WORKER_ID].startswith(b"w-")
            continue
        verdict = output.json()
        assert kind in ("valid", "schema_failure")
        assert output.key == verdict["claim_id"].encode()
        assert output.topic == (topics.failed if verdict["outcome"] == "fail" else topics.passed)
        if kind == "schema_failure":
            assert verdict["outcome"] == "fail"
            assert {finding["category"] for finding in verdict["findings"]} == {"schema"}

    # And the metrics endpoint shows what was processed
    assert wait_for_metric(worker, "claims_consumed_total", len(inputs)) == len(inputs)
    outcomes = Counter(output.json()["outcome"] for output in outputs if output.topic != topics.dlq)
    for outcome in ("pass", "fail", "not_applicable"):
        assert worker.metric(f'claims_verdicts_total{{outcome="{outcome}"}}') == outcomes[outcome]
    assert worker.metric('claims_dead_letters_total{reason="not_json"}') == 10
    assert worker.metric('claims_dead_letters_total{reason="unsupported_schema_version"}') == 10
    assert worker.scrape("/readyz").strip() == "ready"
    assert worker.stop() == 0


def test_transactional_outputs_are_invisible_to_read_committed_readers_until_committed(
    kafka_bootstrap: str, new_topic: Callable[..., str]
) -> None:
    source, sink = new_topic("in"), new_topic("out")
    settings = load_settings(
        bootstrap_servers=kafka_bootstrap,
        delivery="exactly_once",
        input_topic=source,
        pass_topic=sink,
        fail_topic=sink,
        dlq_topic=sink,
        group_id=unique("g"),
        worker_id=unique("w"),
    )
    consumer = KafkaConsumerAdapter(settings)
    producer = KafkaProducerAdapter(settings)
    committed = KafkaConsumer(bootstrap_servers=kafka_bootstrap, isolation_level="read_committed")
    uncommitted = KafkaConsumer(bootstrap_servers=kafka_bootstrap, isolation_level="read_uncommitted")
    partition = KafkaTopicPartition(sink, 0)

    def visible(reader: KafkaConsumer) -> int:
        # The end offset a reader may read to: the last stable offset for read_committed.
        offset: int = reader.end_offsets([partition], timeout_ms=10_000)[partition]
        return offset

    try:
        producer.begin_transaction()
        producer.send(sink, key=b"C-1", value=b"verdict-1", headers=None)
        producer.flush(30)
        assert (visible(uncommitted), visible(committed)) == (1, 0)

        producer.commit_transaction({TopicPartition(source, 0): 0}, consumer.group_metadata(), 30)
        # The coordinator writes the commit marker just after answering: wait (bounded) for it.
        deadline = time.monotonic() + 30
        while visible(committed) != 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert visible(committed) == 2  # the record and the commit marker

        producer.begin_transaction()
        producer.send(sink, key=b"C-2", value=b"verdict-2", headers=None)
        producer.flush(30)
        producer.abort_transaction(30)
        readable = read_outputs(kafka_bootstrap, (sink,), expected=2, timeout_s=3)
        assert [output.value for output in readable] == [b"verdict-1"]
    finally:
        committed.close()
        uncommitted.close()
        producer.close(5)
        consumer.close(5)


def test_two_workers_in_one_group_share_the_partitions_and_together_process_everything_once(
    kafka_bootstrap: str, worker_topics: MakeTopics, start_worker: StartWorker
) -> None:
    # Given two exactly-once workers in one group, each owning part of a four-partition topic
    topics = worker_topics(partitions=4)
    group = unique("g")
    workers = [start_worker(topics, delivery="exactly_once", group_id=group, worker_id=unique("w")) for _ in range(2)]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assigned = [worker.metric(f'claims_assigned_partitions{{topic="{topics.input}"}}') for worker in workers]
        if all(count >= 1 for count in assigned) and sum(assigned) == 4:
            break
        time.sleep(0.2)
    else:
        pytest.fail(f"the group did not settle on 4 partitions over 2 workers: {assigned}")

    # When claims arrive
    inputs = [(f"C-{index}".encode(), claims.valid(f"C-{index}")) for index in range(400)]
    placed = publish(kafka_bootstrap, topics.input, inputs)
    outputs = read_outputs(kafka_bootstrap, topics.outputs, expected=len(inputs))

    # Then each is processed exactly once, and both workers did part of the work
    assert Counter(source_of(output) for output in outputs) == Counter(dict.fromkeys(placed, 1))
    deadline = time.monotonic() + 30
    consumed = [worker.metric("claims_consumed_total") for worker in workers]
    while sum(consumed) != len(inputs) and time.monotonic() < deadline:
        time.sleep(0.1)
        consumed = [worker.metric("claims_consumed_total") for worker in workers]
    # With claim history on, a worker's part is the claims it judged in either stage.
    worked = [
        count + worker.metric("claims_history_deferred_total") for count, worker in zip(consumed, workers, strict=True)
    ]
    assert all(count > 0 for count in worked)
    assert sum(consumed) == len(inputs)
    assert [worker.stop() for worker in workers] == [0, 0]


def test_sigterm_mid_stream_loses_nothing_and_the_restarted_worker_continues_from_committed_offsets(
    kafka_bootstrap: str, worker_topics: MakeTopics, start_worker: StartWorker
) -> None:
    # Given a backlog, and a worker processing it in small batches
    topics = worker_topics(partitions=3)
    inputs = [(f"C-{index}".encode(), claims.valid(f"C-{index}")) for index in range(3000)]
    placed = publish(kafka_bootstrap, topics.input, inputs)
    group = unique("g")
    first = start_worker(topics, group_id=group, worker_id=unique("w"), batch_max_records="20")
    first.wait_for_event("batch.processed", predicate=_brought_claims_to_their_outcome)

    # When it gets SIGTERM mid-stream
    assert first.stop(signal.SIGTERM) == 0
    first_outcomes = first.wait_for_event("worker.stopped")["outcomes"]
    assert 0 < first_outcomes < len(inputs), "the stop must land mid-stream for this test to mean anything"

    # Then a restarted worker processes exactly the rest: nothing lost, nothing repeated
    second = start_worker(topics, group_id=group, worker_id=unique("w"))
    outputs = read_outputs(kafka_bootstrap, topics.outputs, expected=len(inputs))
    assert second.stop() == 0
    assert first_outcomes + second.wait_for_event("worker.stopped")["outcomes"] == len(inputs)
    assert Counter(source_of(output) for output in outputs) == Counter(dict.fromkeys(placed, 1))


def _brought_claims_to_their_outcome(batch: dict[str, Any]) -> bool:
    # With claim history on, the first batches may only defer claims to the history stage.
    return sum(batch[key] for key in ("passed", "failed", "not_applicable", "dead_letters")) > 0


def test_logs_metrics_and_dead_letter_headers_carry_no_patient_data(
    kafka_bootstrap: str, worker_topics: MakeTopics, start_worker: StartWorker
) -> None:
    topics = worker_topics(partitions=2)
    inputs = mixed_inputs(5)
    publish(kafka_bootstrap, topics.input, [(key, value) for _, key, value in inputs])
    worker = start_worker(topics, group_id=unique("g"), worker_id=unique("w"), log_level="debug")
    outputs = read_outputs(kafka_bootstrap, topics.outputs, expected=len(inputs))
    wait_for_metric(worker, "claims_consumed_total", len(inputs))
    metrics_text = worker.scrape()
    assert worker.stop() == 0

    logs = worker.logs()
    assert "claim.dead_lettered" in logs  # the logs do talk about these claims...
    secrets = [claims.SECRET_MEMBER_PREFIX, claims.SECRET_BIRTH_DATE, claims.SECRET_VALID_BIRTH_DATE]
    headers = [value for output in outputs if output.topic == topics.dlq for value in output.headers.values()]
    for secret in secrets:  # ...but never with what is in them
        assert secret not in logs
        assert secret not in metrics_text
        assert all(secret.encode() not in header for header in headers)


def test_missing_topics_stop_the_worker_with_the_configuration_exit_code(
    worker_topics: MakeTopics, start_worker: StartWorker
) -> None:
    topics = dataclasses.replace(worker_topics(partitions=1), dlq=unique("t.missing-dlq"))

    worker = start_worker(topics, group_id=unique("g"))

    assert worker.process.wait(timeout=60) == 3
    assert topics.dlq in worker.wait_for_event("worker.start_failed", timeout_s=1)["reason"]


def test_an_unreachable_broker_ends_the_worker_with_the_outage_exit_code(
    worker_topics: MakeTopics, start_worker: StartWorker
) -> None:
    worker = start_worker(
        worker_topics(partitions=1),
        bootstrap_servers=f"127.0.0.1:{free_port()}",
        max_outage_s="2",
        request_timeout_ms="2000",
    )

    assert worker.process.wait(timeout=60) == 4
    assert worker.wait_for_event("worker.start_failed", timeout_s=1)["exit_code"] == 4


def test_the_rebalance_listener_commits_pending_offsets_before_giving_partitions_up(
    kafka_bootstrap: str, kafka_admin: object, new_topic: Callable[..., str]
) -> None:
    # Given a member that owns a partition and holds acknowledged-but-uncommitted offsets for it
    topic = new_topic("in", partitions=2)
    publish(kafka_bootstrap, topic, [(b"k", b"v")] * 3)
    group = unique("g")
    settings = load_settings(
        bootstrap_servers=kafka_bootstrap, input_topic=topic, group_id=group, worker_id=unique("w")
    )
    pending = PendingOffsets()
    consumer = KafkaConsumerAdapter(settings)
    producer = KafkaProducerAdapter(settings)
    sink = AtLeastOnceSink(consumer=consumer, producer=producer, pending=pending)
    handler = RebalanceHandler(sink=sink, observer=ObserverChain())
    consumer.subscribe([topic], KafkaRebalanceListener(handler))
    deadline = time.monotonic() + 30
    while len(handler.assigned) < 2 and time.monotonic() < deadline:
        consumer.poll(100, 10)
    assert len(handler.assigned) == 2
    pending.add({TopicPartition(topic, 0): 2, TopicPartition(topic, 1): 1})

    # When the partitions are revoked (closing the consumer revokes them all)
    consumer.close(10)

    # Then the listener committed the pending offsets while it still owned the partitions
    committed = kafka_admin.list_group_offsets(group)[group]  # type: ignore[attr-defined]
    assert {tp.partition: meta.offset for tp, meta in committed.items()} == {0: 2, 1: 1}
    assert len(pending) == 0
    assert handler.assigned == frozenset()
    producer.close(5)
