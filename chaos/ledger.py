"""Reading the topics back and matching every output to its input by Kafka coordinates.

A verdict names its input in `source` (topic, partition, offset); a dead letter in its `dlq.source.*` headers.
Outputs are read with `read_committed`, so in exactly_once aborted transactions (a killed worker's unfinished
batch) do not count; in at_least_once nothing is transactional and every output counts.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from kafka import KafkaConsumer
from kafka.structs import TopicPartition

from worker.loop import DLQ_REASON, DLQ_SOURCE_OFFSET, DLQ_SOURCE_PARTITION, DLQ_SOURCE_TOPIC

Coordinates = tuple[str, int, int]  # input topic, partition, offset


def source_of(value: bytes | None, headers: Iterable[tuple[str, bytes]] | None) -> Coordinates | None:
    """The input an output answers, or None when the output names none (which the tally counts as unexpected)."""
    named = dict(headers or [])
    try:
        if DLQ_REASON in named:
            return (
                named[DLQ_SOURCE_TOPIC].decode(),
                int(named[DLQ_SOURCE_PARTITION]),
                int(named[DLQ_SOURCE_OFFSET]),
            )
        source = json.loads(value or b"")["source"]
        return (str(source["topic"]), int(source["partition"]), int(source["offset"]))
    except (KeyError, TypeError, ValueError):
        return None


@dataclass
class Tally:
    """Inputs against outputs: what was lost, doubled, or came from nowhere."""

    inputs: int
    outputs: int
    lost: int
    duplicates: int  # outputs beyond the first for the same input
    unexpected: int  # outputs that answer no input of this run
    aborted: int = 0  # output records of aborted transactions (exactly_once: kills that landed mid-batch)
    lost_sample: list[Coordinates] = field(default_factory=list)
    duplicate_sample: list[Coordinates] = field(default_factory=list)

    @classmethod
    def of(cls, inputs: set[Coordinates], answered: Counter[Coordinates | None]) -> Tally:
        lost = sorted(inputs - set(answered))
        doubled = sorted(coordinates for coordinates, count in answered.items() if coordinates in inputs and count > 1)
        return cls(
            inputs=len(inputs),
            outputs=sum(answered.values()),
            lost=len(lost),
            duplicates=sum(answered[coordinates] - 1 for coordinates in doubled),
            unexpected=sum(count for coordinates, count in answered.items() if coordinates not in inputs),
            lost_sample=lost[:5],
            duplicate_sample=doubled[:5],
        )


class TopicReader:
    """Reads whole topics from the beginning, incrementally, without a group (nothing is committed)."""

    def __init__(self, bootstrap: str, topics: Iterable[str], *, isolation: str = "read_committed") -> None:
        self._consumer = KafkaConsumer(
            bootstrap_servers=bootstrap,
            client_id="chaos-reader",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level=isolation,
            request_timeout_ms=30_000,
            reconnect_backoff_max_ms=1_000,
        )
        self._partitions = [
            TopicPartition(topic, partition) for topic in topics for partition in sorted(self._partitions_of(topic))
        ]
        self._consumer.assign(self._partitions)
        self._consumer.seek_to_beginning(*self._partitions)

    def _partitions_of(self, topic: str) -> set[int]:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            found = self._consumer.partitions_for_topic(topic)
            if found:
                return set(found)
            time.sleep(0.2)
        raise RuntimeError(f"no metadata for topic {topic}")

    def poll(self, timeout_ms: int = 200) -> list[Any]:
        records = []
        for batch in self._consumer.poll(timeout_ms=timeout_ms, max_records=10_000).values():
            records.extend(batch)
        return records

    def end_offsets(self) -> dict[TopicPartition, int]:
        """End offsets (for read_committed: the last stable offsets) of every partition."""
        ends: dict[TopicPartition, int] = self._consumer.end_offsets(self._partitions, timeout_ms=30_000)
        return ends

    def caught_up(self, ends: dict[TopicPartition, int]) -> bool:
        return all(self._consumer.position(tp, timeout_ms=30_000) >= end for tp, end in ends.items())

    def read_to_end(self, timeout_s: float) -> list[Any]:
        """Everything up to the current end offsets (bounded by `timeout_s`; raises when that is not enough)."""
        ends = self.end_offsets()
        records: list[Any] = []
        deadline = time.monotonic() + timeout_s
        while not self.caught_up(ends):
            if time.monotonic() > deadline:
                raise TimeoutError(f"could not read up to {ends} within {timeout_s:.0f}s")
            records.extend(self.poll(500))
        return records

    def close(self) -> None:
        self._consumer.close()


class Progress:
    """Which inputs have an output so far, while a scenario runs (for knowing when it is done, not for the verdict)."""

    def __init__(self, bootstrap: str, input_topic: str, output_topics: Iterable[str]) -> None:
        self._inputs = TopicReader(bootstrap, [input_topic], isolation="read_uncommitted")
        self._outputs = TopicReader(bootstrap, output_topics)
        self.answered: set[Coordinates | None] = set()

    def input_count(self) -> int:
        return sum(self._inputs.end_offsets().values())

    def update(self, timeout_ms: int = 200) -> int:
        for record in self._outputs.poll(timeout_ms):
            self.answered.add(source_of(record.value, record.headers))
        return len(self.answered)

    def close(self) -> None:
        self._inputs.close()
        self._outputs.close()


def final_tally(bootstrap: str, input_topic: str, output_topics: Iterable[str], timeout_s: float = 120.0) -> Tally:
    """Read the whole input topic and every output topic (read_committed) and match them."""
    inputs_reader = TopicReader(bootstrap, [input_topic], isolation="read_uncommitted")
    try:
        inputs = {(record.topic, record.partition, record.offset) for record in inputs_reader.read_to_end(timeout_s)}
    finally:
        inputs_reader.close()
    outputs_reader = TopicReader(bootstrap, output_topics)
    try:
        answered = Counter(source_of(record.value, record.headers) for record in outputs_reader.read_to_end(timeout_s))
    finally:
        outputs_reader.close()
    everything_reader = TopicReader(bootstrap, output_topics, isolation="read_uncommitted")
    try:
        written = len(everything_reader.read_to_end(timeout_s))
    finally:
        everything_reader.close()
    tally = Tally.of(inputs, answered)
    tally.aborted = written - tally.outputs
    return tally
