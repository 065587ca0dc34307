"""The test broker is a real Apache Kafka 4.x: partitions, consumer groups and transactions all work on it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.structs import OffsetAndMetadata

from tests.conftest import TopicFactory

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(180)]


@contextmanager
def consumer(bootstrap: str, *topics: str, **config: object) -> Iterator[KafkaConsumer]:
    client = KafkaConsumer(
        *topics,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        consumer_timeout_ms=1000,
        **config,
    )
    try:
        yield client
    finally:
        client.close()


def drain(client: KafkaConsumer, expected: int, *, deadline_s: float = 60.0) -> list[tuple[int, bytes, bytes]]:
    """Poll until `expected` records arrived or the deadline passed; returns (partition, key, value)."""
    records: list[tuple[int, bytes, bytes]] = []
    give_up_at = time.monotonic() + deadline_s
    while len(records) < expected and time.monotonic() < give_up_at:
        for batch in client.poll(timeout_ms=500).values():
            records.extend((record.partition, record.key, record.value) for record in batch)
    return records


def test_broker_speaks_kafka_4(kafka_admin: KafkaAdminClient) -> None:
    # Kafka 4.0 removed ZooKeeper and the old message formats; its brokers report API versions of 4.x.
    version = kafka_admin._client.check_version()  # the public API exposes no broker version

    assert version >= (4, 0)


def test_records_spread_over_partitions_and_all_come_back(kafka_bootstrap: str, new_topic: TopicFactory) -> None:
    topic = new_topic("smoke", partitions=3)
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap)
    sent = {f"key-{n}".encode(): f"value-{n}".encode() for n in range(60)}
    for key, value in sent.items():
        producer.send(topic, key=key, value=value)
    producer.flush(timeout=30)
    producer.close()

    with consumer(kafka_bootstrap, topic) as client:
        received = drain(client, len(sent))

    assert {key: value for _, key, value in received} == sent
    assert {partition for partition, _, _ in received} == {0, 1, 2}


def test_committed_group_offsets_are_where_the_next_member_resumes(
    kafka_bootstrap: str, new_topic: TopicFactory
) -> None:
    topic = new_topic("offsets")
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap)
    for n in range(10):
        producer.send(topic, value=f"m{n}".encode())
    producer.flush(timeout=30)
    producer.close()
    partition = TopicPartition(topic, 0)

    # Given a member that read everything but committed only the first four records
    with consumer(kafka_bootstrap, topic, group_id=f"{topic}.group") as first:
        assert len(drain(first, 10)) == 10
        first.commit({partition: OffsetAndMetadata(4, "", -1)})

    # When a new member of the same group starts, it resumes at offset 4
    with consumer(kafka_bootstrap, topic, group_id=f"{topic}.group") as second:
        resumed = drain(second, 6)
        assert second.committed(partition) == 4

    assert [value for _, _, value in resumed] == [f"m{n}".encode() for n in range(4, 10)]


def test_transaction_commits_outputs_and_offsets_together(kafka_bootstrap: str, new_topic: TopicFactory) -> None:
    source, sink = new_topic("source"), new_topic("sink")
    group = f"{source}.group"
    plain = KafkaProducer(bootstrap_servers=kafka_bootstrap)
    for n in range(5):
        plain.send(source, value=f"in{n}".encode())
    plain.flush(timeout=30)
    plain.close()

    transactional = KafkaProducer(bootstrap_servers=kafka_bootstrap, transactional_id=f"{sink}.tx")
    transactional.init_transactions()
    with consumer(kafka_bootstrap, source, group_id=group, isolation_level="read_committed") as reader:
        inputs = drain(reader, 5)
        assert len(inputs) == 5

        # An aborted transaction leaves nothing visible to read_committed readers
        transactional.begin_transaction()
        transactional.send(sink, value=b"aborted")
        transactional.flush(timeout=30)
        transactional.abort_transaction()

        transactional.begin_transaction()
        for _, _, value in inputs:
            transactional.send(sink, value=value.replace(b"in", b"out"))
        transactional.send_offsets_to_transaction(
            {TopicPartition(source, 0): OffsetAndMetadata(5, "", -1)}, reader.group_metadata()
        )
        transactional.commit_transaction()
        assert reader.committed(TopicPartition(source, 0)) == 5
    transactional.close()

    with consumer(kafka_bootstrap, sink, isolation_level="read_committed") as committed_reader:
        committed = drain(committed_reader, 5, deadline_s=20)
    with consumer(kafka_bootstrap, sink, isolation_level="read_uncommitted") as raw_reader:
        everything = drain(raw_reader, 6, deadline_s=20)

    assert [value for _, _, value in committed] == [f"out{n}".encode() for n in range(5)]
    assert b"aborted" in [value for _, _, value in everything]
