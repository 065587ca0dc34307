"""Helpers of the Kafka-path reliability and security tests: topics that take 10 MiB records, a producer that sends
them, a worker's peak RSS, and outputs keyed by the input they answer."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from tests.worker.conftest import Topics, publish
from worker.topic_reader import TopicRecord
from worker.topic_set import CHANGELOG_CONFIGS

# The local broker allows 10 MiB (KAFKA_MESSAGE_MAX_BYTES); the topics say so too, for a broker configured lower.
TOPIC_MAX_MESSAGE_BYTES = 10 * 1024 * 1024
PRODUCER_MAX_REQUEST_BYTES = 16 * 1024 * 1024


def hostile_topics(new_topic: Callable[..., str], *, input_partitions: int = 2) -> Topics:
    big = {"max.message.bytes": str(TOPIC_MAX_MESSAGE_BYTES)}
    return Topics(
        input=new_topic("in", partitions=input_partitions, config=big),
        passed=new_topic("pass", partitions=1),
        failed=new_topic("fail", partitions=1),
        dlq=new_topic("dlq", partitions=1, config=big),
        repartition=new_topic("by-member", partitions=2),
        changelog=new_topic("changelog", partitions=2, config=dict(CHANGELOG_CONFIGS)),
    )


def publish_large(bootstrap: str, topic: str, records: Sequence[tuple[bytes | None, bytes]]) -> list[tuple[int, int]]:
    """Like `publish`, with a request size that lets values up to the topic's 10 MiB through."""
    return publish(bootstrap, topic, records, flush_timeout_s=120, max_request_size=PRODUCER_MAX_REQUEST_BYTES)


def peak_rss_mb(pid: int) -> float:
    """VmHWM of a live process, in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmHWM for pid {pid}")


@dataclass(frozen=True)
class Answer:
    kind: str  # pass, fail or dlq
    output: TopicRecord


def answers_by_input(topics: Topics, outputs: list[TopicRecord]) -> dict[tuple[int, int], list[Answer]]:
    """Outputs grouped by the (partition, offset) of the input they answer."""
    kinds = {topics.passed: "pass", topics.failed: "fail", topics.dlq: "dlq"}
    grouped: dict[tuple[int, int], list[Answer]] = {}
    for output in outputs:
        source = output.answers()
        assert source is not None, f"an output names no input: {output.topic}@{output.offset}"
        topic, partition, offset = source
        assert topic == topics.input
        grouped.setdefault((partition, offset), []).append(Answer(kinds[output.topic], output))
    return grouped
