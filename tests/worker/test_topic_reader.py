"""The topic reader the demo, the chaos harness and the end-to-end tests share: whole topics from the beginning,
to the end offsets of the call or to a count, read_committed or not. Against a real broker, on fresh topics."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence

import pytest
from kafka import KafkaProducer

from worker.topic_reader import TopicReader, TopicRecord

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(120)]

NewTopic = Callable[..., str]
Sent = tuple[int, bytes | None, bytes, list[tuple[str, bytes]]]  # partition, key, value, headers


def send(bootstrap: str, topic: str, records: Sequence[Sent]) -> list[int]:
    """Send records to the given partitions; returns each one's offset."""
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    try:
        futures = [
            producer.send(topic, key=key, value=value, headers=headers, partition=partition)
            for partition, key, value, headers in records
        ]
        producer.flush(timeout=30)
        return [future.get(timeout=1).offset for future in futures]
    finally:
        producer.close(timeout=10)


def values(bootstrap: str, topic: str, count: int, *, start: int = 0) -> list[int]:
    return send(bootstrap, topic, [(0, None, f"v{n}".encode(), []) for n in range(start, start + count)])


def test_json_is_the_value_parsed() -> None:
    record = TopicRecord("t", 0, 7, b"C-1", b'{"outcome": "pass"}', {})

    assert record.json() == {"outcome": "pass"}


def test_json_of_a_record_without_a_value_raises_value_error() -> None:
    record = TopicRecord("t", 0, 7, b"C-1", None, {})

    with pytest.raises(ValueError, match="Expecting value"):
        record.json()


def test_read_to_end_returns_every_record_of_every_partition_of_every_topic_with_where_it_is(
    kafka_bootstrap: str, new_topic: NewTopic
) -> None:
    wide, narrow = new_topic("wide", partitions=3), new_topic("narrow")
    send(kafka_bootstrap, wide, [(2, b"k1", b"one", [("trace", b"abc")]), (0, None, b"two", []), (2, b"k3", b"3", [])])
    send(kafka_bootstrap, narrow, [(0, b"k4", b"four", [("dlq.reason", b"not_json"), ("trace", b"xyz")])])

    with TopicReader(kafka_bootstrap, [wide, narrow]) as reader:
        records = reader.read_to_end(timeout_s=60)

    assert sorted(records, key=lambda r: (r.topic, r.partition, r.offset)) == sorted(
        [
            TopicRecord(wide, 0, 0, None, b"two", {}),
            TopicRecord(wide, 2, 0, b"k1", b"one", {"trace": b"abc"}),
            TopicRecord(wide, 2, 1, b"k3", b"3", {}),
            TopicRecord(narrow, 0, 0, b"k4", b"four", {"dlq.reason": b"not_json", "trace": b"xyz"}),
        ],
        key=lambda r: (r.topic, r.partition, r.offset),
    )


def test_read_to_end_of_empty_topics_returns_nothing(kafka_bootstrap: str, new_topic: NewTopic) -> None:
    with TopicReader(kafka_bootstrap, [new_topic("empty", partitions=2)]) as reader:
        assert reader.read_to_end(timeout_s=60) == []


def test_read_to_end_stops_at_the_end_offsets_of_its_call_and_the_next_call_goes_on_from_there(
    kafka_bootstrap: str, new_topic: NewTopic
) -> None:
    topic = new_topic("grows")
    values(kafka_bootstrap, topic, 3)

    with TopicReader(kafka_bootstrap, [topic]) as reader:
        first = reader.read_to_end(timeout_s=60)
        values(kafka_bootstrap, topic, 2, start=3)
        second = reader.read_to_end(timeout_s=60)

    assert [(r.offset, r.value) for r in first] == [(0, b"v0"), (1, b"v1"), (2, b"v2")]
    assert [(r.offset, r.value) for r in second] == [(3, b"v3"), (4, b"v4")]


def test_read_to_end_raises_timeout_error_when_its_deadline_passes_before_the_end(
    kafka_bootstrap: str, new_topic: NewTopic
) -> None:
    topic = new_topic("slow")
    values(kafka_bootstrap, topic, 1)

    with TopicReader(kafka_bootstrap, [topic]) as reader, pytest.raises(TimeoutError, match="could not read up to"):
        reader.read_to_end(timeout_s=0)


def test_read_committed_skips_aborted_transactions_and_read_uncommitted_sees_them(
    kafka_bootstrap: str, new_topic: NewTopic
) -> None:
    topic = new_topic("transactional")
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, transactional_id=f"tests-reader-{uuid.uuid4().hex}")
    try:
        producer.init_transactions()
        producer.begin_transaction()
        producer.send(topic, key=b"C-1", value=b"kept", partition=0)
        producer.commit_transaction()
        producer.begin_transaction()
        producer.send(topic, key=b"C-2", value=b"aborted", partition=0)
        producer.flush(timeout=30)  # written to the log, then aborted (unflushed records would just be dropped)
        producer.abort_transaction()
    finally:
        producer.close(timeout=10)

    with (
        TopicReader(kafka_bootstrap, [topic]) as committed,
        TopicReader(kafka_bootstrap, [topic], isolation="read_uncommitted") as everything,
    ):
        # The coordinator writes the abort marker just after answering: wait (bounded) until read_committed's end
        # (the last stable offset) has caught up with the end of the log, so both readers read to the same end.
        deadline = time.monotonic() + 30
        while committed.end_offsets() != everything.end_offsets() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert [r.value for r in committed.read_to_end(timeout_s=60)] == [b"kept"]
        assert [r.value for r in everything.read_to_end(timeout_s=60)] == [b"kept", b"aborted"]


def test_read_until_count_returns_once_the_count_has_arrived(kafka_bootstrap: str, new_topic: NewTopic) -> None:
    topic = new_topic("counted")
    values(kafka_bootstrap, topic, 5)

    with TopicReader(kafka_bootstrap, [topic]) as reader:
        records = reader.read_until_count(3, timeout_s=60)

    assert len(records) >= 3
    assert [r.value for r in records] == [f"v{n}".encode() for n in range(len(records))]


def test_read_until_count_returns_what_arrived_when_its_deadline_passes_first(
    kafka_bootstrap: str, new_topic: NewTopic
) -> None:
    topic = new_topic("short")
    values(kafka_bootstrap, topic, 2)

    with TopicReader(kafka_bootstrap, [topic]) as reader:
        records = reader.read_until_count(5, timeout_s=5)

    assert [r.value for r in records] == [b"v0", b"v1"]


def test_a_topic_without_partitions_raises_timeout_error(kafka_bootstrap: str) -> None:
    missing = f"t.no-such-topic.{uuid.uuid4().hex[:8]}"

    with pytest.raises(TimeoutError, match=f"no partitions of topic {missing}"):
        TopicReader(kafka_bootstrap, [missing], metadata_timeout_s=1)
