"""Reading topics back: how the demo, the chaos harness, the end-to-end tests and `claims-worker consume` see what
the worker wrote.

The reader joins no consumer group and commits nothing, so it never disturbs the worker's group or another reader.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal, Self

from kafka import KafkaConsumer
from kafka.structs import TopicPartition

from worker.kafka_fixes import close_sockets_of_failed_connects
from worker.routing import DLQ_REASON, DLQ_SOURCE_OFFSET, DLQ_SOURCE_PARTITION, DLQ_SOURCE_TOPIC

Isolation = Literal["read_committed", "read_uncommitted"]
InputCoordinates = tuple[str, int, int]  # topic, partition, offset of an input record

METADATA_TIMEOUT_S = 60.0
REQUEST_TIMEOUT_MS = 30_000
# kafka-python backs off up to 30 s between reconnects by default; a reader that outlives a broker restart (the
# chaos harness) should be reading again within a second of the broker being back.
RECONNECT_BACKOFF_MAX_MS = 1_000
MAX_RECORDS_PER_POLL = 10_000


@dataclass(frozen=True)
class TopicRecord:
    """One record as read: where it is, its key, its value (None for a null value) and its headers.

    `headers` is a dict; should one record repeat a header name, the last value wins (the worker's own headers are
    never repeated, a dead letter's copied input headers could be).
    """

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: dict[str, bytes]

    def json(self) -> Any:
        """The value parsed as JSON; raises ValueError when it is not JSON or the record has no value."""
        return json.loads(self.value or b"")

    def answers(self) -> InputCoordinates | None:
        """The input this output of the worker answers (see `input_answered`)."""
        return input_answered(self.value, self.headers.items())


def input_answered(value: bytes | None, headers: Iterable[tuple[str, bytes]] | None) -> InputCoordinates | None:
    """The input a worker output answers: a dead letter's `dlq.source.*` headers (whatever its value, which is the
    input's own bytes), else a verdict's `source`; None when the record names no input."""
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


class TopicReader:
    """Every partition of `topics`, read from the beginning (or, with `from_beginning=False`, from the end offsets
    as they are when it is built), without a consumer group; nothing is committed.

    `isolation` is "read_committed" (the default: records of aborted and still open transactions are skipped) or
    "read_uncommitted" (everything written). The constructor waits up to `metadata_timeout_s` (default 60) for each
    topic's partitions and raises TimeoutError when a topic has none by then. `client_options` are extra
    kafka-python options laid over the reader's own (the worker's security settings, `kafka_io.connection_options`).
    Positions carry over between calls: each `poll`/`read_*` call returns the records after those already returned.
    Close it, or use it as a context manager.
    """

    def __init__(
        self,
        bootstrap: str,
        topics: Iterable[str],
        *,
        isolation: Isolation = "read_committed",
        client_id: str = "topic-reader",
        metadata_timeout_s: float = METADATA_TIMEOUT_S,
        from_beginning: bool = True,
        client_options: Mapping[str, Any] | None = None,
    ) -> None:
        close_sockets_of_failed_connects()
        self._isolation = isolation
        self._records_read = 0
        options: dict[str, Any] = {
            "bootstrap_servers": bootstrap,
            "request_timeout_ms": REQUEST_TIMEOUT_MS,
            "reconnect_backoff_max_ms": RECONNECT_BACKOFF_MAX_MS,
            **(client_options or {}),
            # What makes it a reader: no group, nothing committed, the isolation asked for.
            "client_id": client_id,
            "enable_auto_commit": False,
            "auto_offset_reset": "earliest",
            "isolation_level": isolation,
        }
        self._consumer = KafkaConsumer(**options)
        try:
            self._partitions = [
                TopicPartition(topic, partition)
                for topic in topics
                for partition in sorted(self._partitions_of(topic, metadata_timeout_s))
            ]
        except BaseException:
            self._consumer.close()
            raise
        self._consumer.assign(self._partitions)
        if from_beginning:
            self._consumer.seek_to_beginning(*self._partitions)
        else:
            self._consumer.seek_to_end(*self._partitions)
            # The seek is lazy: resolve it now, so that records written from here on are read, not skipped.
            for partition in self._partitions:
                self._consumer.position(partition, timeout_ms=REQUEST_TIMEOUT_MS)

    def _partitions_of(self, topic: str, timeout_s: float) -> set[int]:
        deadline = time.monotonic() + timeout_s
        while True:
            found: set[int] = self._consumer.partitions_for_topic(topic)
            if found:
                return found
            if time.monotonic() >= deadline:
                raise TimeoutError(f"no partitions of topic {topic} within {timeout_s:g}s")
            time.sleep(0.2)

    def poll(self, timeout_ms: int = 200) -> list[TopicRecord]:
        """The records that arrive within `timeout_ms` (default 200), possibly none."""
        found = [
            TopicRecord(r.topic, r.partition, r.offset, r.key, r.value, dict(r.headers or []))
            for batch in self._consumer.poll(timeout_ms=timeout_ms, max_records=MAX_RECORDS_PER_POLL).values()
            for r in batch
        ]
        self._records_read += len(found)
        return found

    def end_offsets(self) -> dict[TopicPartition, int]:
        """The end offset of every partition: for read_committed, the last stable offset (no open transaction)."""
        ends: dict[TopicPartition, int] = self._consumer.end_offsets(self._partitions, timeout_ms=REQUEST_TIMEOUT_MS)
        return ends

    def read_to_end(self, *, timeout_s: float) -> list[TopicRecord]:
        """Every record up to the end offsets as they are when called; records written later are left for later.

        Raises TimeoutError when that takes longer than `timeout_s`.
        """
        return [record for batch in self.batches_to_end(timeout_s=timeout_s) for record in batch]

    def batches_to_end(self, *, timeout_s: float) -> Iterator[list[TopicRecord]]:
        """`read_to_end`, a poll's records at a time (a caller can write them out and stop early).

        Raises TimeoutError when reading up to the end offsets takes longer than `timeout_s`.
        """
        ends = self.end_offsets()
        deadline = time.monotonic() + timeout_s
        while not self._caught_up(ends):
            if time.monotonic() >= deadline:
                raise TimeoutError(f"could not read up to {ends} within {timeout_s:g}s")
            yield self.poll(500)

    def read_until_count(self, count: int, *, timeout_s: float) -> list[TopicRecord]:
        """Records until at least `count` have arrived (this call's), or `timeout_s` has passed; never raises on time.

        May return more than `count` (a poll returns what it fetched) or, at the deadline, fewer.
        """
        found: list[TopicRecord] = []
        deadline = time.monotonic() + timeout_s
        while len(found) < count and time.monotonic() < deadline:
            found.extend(self.poll(200))
        return found

    def _caught_up(self, ends: dict[TopicPartition, int]) -> bool:
        return all(self._consumer.position(tp, timeout_ms=REQUEST_TIMEOUT_MS) >= end for tp, end in ends.items())

    def close(self) -> None:
        self._consumer.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        topics = sorted({tp.topic for tp in self._partitions})
        return (
            f"<TopicReader topics={topics} partitions={len(self._partitions)} isolation={self._isolation}"
            f" records_read={self._records_read}>"
        )
