"""In-memory fakes of the loop's Kafka ports (real fakes: they keep state like a tiny broker, no mocks).

`FakeBroker` holds partitioned topics, committed group offsets and an ordered event log ("acked", "commit",
"txn_commit", ...) so tests can assert what happened in which order. Faults are injected by queueing
exceptions on the consumer or producer (`fail_next`), the only place the tests "mock" anything.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field

from worker.kafka_io import Headers, TopicPartition
from worker.rebalance import RebalanceHandler


@dataclass(frozen=True)
class FakeRecord:
    topic: str
    partition: int
    offset: int
    timestamp: int
    key: bytes | None
    value: bytes | None
    headers: Sequence[tuple[str, bytes]] = ()


@dataclass
class Event:
    kind: str
    detail: object = None


@dataclass
class FakeBroker:
    """Topics as lists of partitions of records; committed offsets of the one group; an event log."""

    topics: dict[str, list[list[FakeRecord]]] = field(default_factory=dict)
    committed: dict[TopicPartition, int] = field(default_factory=dict)
    events: list[Event] = field(default_factory=list)
    now_ms: int = 1_700_000_000_000

    def create(self, topic: str, partitions: int = 1) -> None:
        self.topics[topic] = [[] for _ in range(partitions)]

    def append(
        self,
        topic: str,
        *,
        key: bytes | None,
        value: bytes | None,
        headers: Headers | None = None,
        partition: int | None = None,
        timestamp_ms: int | None = None,
    ) -> FakeRecord:
        partitions = self.topics[topic]
        if partition is None:
            partition = (hash(key) % len(partitions)) if key is not None else 0
        log = partitions[partition]
        timestamp = self.now_ms if timestamp_ms is None else timestamp_ms
        record = FakeRecord(topic, partition, len(log), timestamp, key, value, tuple(headers or ()))
        log.append(record)
        return record

    def records(self, topic: str) -> list[FakeRecord]:
        return [record for partition in self.topics[topic] for record in partition]

    def kinds(self) -> list[str]:
        return [event.kind for event in self.events]


class FakeConsumer:
    """A group member that owns every partition of its topics (until `revoke`)."""

    def __init__(self, broker: FakeBroker, *topics: str) -> None:
        self.broker = broker
        self.topics = topics
        self.handler: RebalanceHandler | None = None
        self.assigned = {TopicPartition(topic, p) for topic in topics for p in range(len(broker.topics[topic]))}
        self.positions = {tp: broker.committed.get(tp, 0) for tp in self.assigned}
        self.fail_next: dict[str, list[BaseException]] = defaultdict(list)
        self.polls = 0
        self.closed = False
        self.seeks: list[tuple[TopicPartition, int]] = []
        self.paused: set[TopicPartition] = set()
        self.on_poll: Callable[[FakeConsumer], None] | None = None

    def subscribe(self, handler: RebalanceHandler) -> None:
        """Like subscribing with a rebalance listener: the handler is told of the assignment at once."""
        self.handler = handler
        handler.on_assigned(self.assigned)

    def _maybe_fail(self, operation: str) -> None:
        if self.fail_next[operation]:
            raise self.fail_next[operation].pop(0)

    max_polls = 500  # a loop that never stops fails the test instead of hanging it

    def poll(self, timeout_ms: int, max_records: int) -> Mapping[TopicPartition, Sequence[FakeRecord]]:
        del timeout_ms
        self.polls += 1
        if self.polls > self.max_polls:
            raise AssertionError(f"the loop polled more than {self.max_polls} times")
        if self.on_poll is not None:
            self.on_poll(self)
        self._maybe_fail("poll")
        batch: dict[TopicPartition, list[FakeRecord]] = {}
        budget = max_records
        for tp in sorted(self.assigned - self.paused):
            log = self.broker.topics[tp.topic][tp.partition]
            start = self.positions[tp]
            taken = log[start : start + budget]
            if taken:
                batch[tp] = taken
                self.positions[tp] = start + len(taken)
                budget -= len(taken)
            if budget == 0:
                break
        return batch

    def commit(self, offsets: Mapping[TopicPartition, int], timeout_s: float) -> None:
        del timeout_s
        self._maybe_fail("commit")
        self.broker.committed.update(offsets)
        self.broker.events.append(Event("commit", dict(offsets)))

    async def commit_during_rebalance(self, offsets: Mapping[TopicPartition, int]) -> None:
        self.commit(offsets, 1.0)

    def seek(self, partition: TopicPartition, offset: int) -> None:
        if partition in self.assigned:
            self.positions[partition] = offset
            self.seeks.append((partition, offset))

    def assignment(self) -> set[TopicPartition]:
        return set(self.assigned)

    def pause(self, partitions: Collection[TopicPartition]) -> None:
        self.paused.update(partitions)

    def resume(self, partitions: Collection[TopicPartition]) -> None:
        self.paused.difference_update(partitions)

    def committed(self, partitions: Sequence[TopicPartition], timeout_s: float) -> dict[TopicPartition, int | None]:
        del timeout_s
        return {tp: self.broker.committed.get(tp) for tp in partitions}

    def group_metadata(self) -> object:
        return "fake-group-metadata"

    def highwater(self, partition: TopicPartition) -> int | None:
        return len(self.broker.topics[partition.topic][partition.partition])

    def position(self, partition: TopicPartition, timeout_s: float) -> int | None:
        del timeout_s
        return self.positions.get(partition)

    def end_offsets(self, partitions: Sequence[TopicPartition], timeout_s: float) -> dict[TopicPartition, int]:
        del timeout_s
        self._maybe_fail("end_offsets")
        return {tp: len(self.broker.topics[tp.topic][tp.partition]) for tp in partitions}

    def close(self, timeout_s: float) -> None:
        del timeout_s
        if self.handler is not None and self.assigned:
            self.revoke(set(self.assigned))
        self.closed = True
        self.broker.events.append(Event("consumer_closed"))

    def assign(self, partitions: set[TopicPartition]) -> None:
        """Simulate a rebalance giving `partitions` (back) to this member, from their committed offsets."""
        assert self.handler is not None
        self.assigned |= partitions
        for tp in partitions:
            self.positions[tp] = self.broker.committed.get(tp, 0)
        self.handler.on_assigned(partitions)

    def revoke(self, partitions: set[TopicPartition], *, lost: bool = False) -> None:
        """Simulate a rebalance taking `partitions` away (what kafka-python's listener would do)."""
        assert self.handler is not None
        if lost:
            self.handler.on_lost(partitions)
        else:
            asyncio.run(self.handler.on_revoked(partitions))
        self.assigned -= partitions
        for tp in partitions:
            self.positions.pop(tp, None)
        self.paused -= partitions


@dataclass
class _Buffered:
    topic: str
    key: bytes | None
    value: bytes | None
    headers: Headers | None
    partition: int | None
    timestamp_ms: int | None
    offset: int | None = None  # once delivered


class FakeProducer:
    """Buffers sends; `flush` (or the transaction commit) makes them visible on the broker, like an ack."""

    def __init__(self, broker: FakeBroker, *, transactional: bool = False) -> None:
        self.broker = broker
        self.transactional = transactional
        self.buffer: list[_Buffered] = []
        self.fail_next: dict[str, list[BaseException]] = defaultdict(list)
        self.in_transaction = False
        self.sent = 0
        self.closed = False
        self.on_send: Callable[[FakeProducer], None] | None = None
        self.fail_on_send: dict[int, BaseException] = {}  # 1-based number of the send that raises
        self.fail_on_flush: dict[int, BaseException] = {}  # 1-based number of the flush that raises
        self.attempts = 0
        self.flushes = 0

    def _maybe_fail(self, operation: str) -> None:
        if self.fail_next[operation]:
            raise self.fail_next[operation].pop(0)

    def send(
        self,
        topic: str,
        *,
        key: bytes | None,
        value: bytes | None,
        headers: Headers | None,
        partition: int | None = None,
        timestamp_ms: int | None = None,
    ) -> None:
        if self.transactional and not self.in_transaction:
            raise AssertionError("send outside a transaction")
        self.attempts += 1
        if self.attempts in self.fail_on_send:
            raise self.fail_on_send.pop(self.attempts)
        self.buffer.append(_Buffered(topic, key, value, headers, partition, timestamp_ms))
        self.sent += 1
        if self.on_send is not None:
            self.on_send(self)

    def send_tracked(
        self,
        topic: str,
        *,
        key: bytes | None,
        value: bytes | None,
        headers: Headers | None,
        partition: int | None = None,
        timestamp_ms: int | None = None,
    ) -> Callable[[], int]:
        self.send(topic, key=key, value=value, headers=headers, partition=partition, timestamp_ms=timestamp_ms)
        buffered = self.buffer[-1]

        def offset() -> int:
            if buffered.offset is None:
                raise AssertionError("the offset of a record read before it was delivered")
            return buffered.offset

        return offset

    def _deliver(self) -> int:
        for buffered in self.buffer:
            record = self.broker.append(
                buffered.topic,
                key=buffered.key,
                value=buffered.value,
                headers=buffered.headers,
                partition=buffered.partition,
                timestamp_ms=buffered.timestamp_ms,
            )
            buffered.offset = record.offset
        delivered = len(self.buffer)
        self.buffer = []
        return delivered

    def flush(self, timeout_s: float) -> None:
        del timeout_s
        self.flushes += 1
        if self.flushes in self.fail_on_flush:
            self.buffer = []
            raise self.fail_on_flush.pop(self.flushes)
        if self.fail_next["flush"]:
            self.buffer = []  # the worst case: nothing of the batch was delivered
            raise self.fail_next["flush"].pop(0)
        self.broker.events.append(Event("acked", self._deliver()))

    def begin_transaction(self) -> None:
        assert self.transactional
        assert not self.in_transaction
        self.in_transaction = True
        self.broker.events.append(Event("txn_begin"))

    def commit_transaction(
        self, offsets: Mapping[TopicPartition, int], group_metadata: object, timeout_s: float
    ) -> None:
        del timeout_s
        assert self.in_transaction
        assert group_metadata == "fake-group-metadata"
        self._maybe_fail("commit_transaction")
        delivered = self._deliver()
        self.broker.committed.update(offsets)
        self.in_transaction = False
        self.broker.events.append(Event("txn_commit", (delivered, dict(offsets))))

    def abort_transaction(self, timeout_s: float) -> None:
        del timeout_s
        self._maybe_fail("abort_transaction")
        self.buffer = []
        self.in_transaction = False
        self.broker.events.append(Event("txn_abort"))

    def close(self, timeout_s: float) -> None:
        del timeout_s
        self.closed = True


class FakeChangelogReader:
    """`ChangelogReader` on a FakeBroker topic: reads what producers delivered (the fakes have no open transactions)."""

    def __init__(self, broker: FakeBroker, topic: str) -> None:
        self.broker = broker
        self.topic = topic
        self.positions: dict[int, int] = {}
        self.polls = 0

    def high_watermarks(self, partitions: Sequence[int], timeout_s: float) -> dict[int, int]:
        del timeout_s
        return {p: len(self.broker.topics[self.topic][p]) for p in partitions}

    def assign(self, starts: Mapping[int, int]) -> None:
        self.positions = dict(starts)

    def poll(self, timeout_ms: int, max_records: int) -> list[FakeRecord]:
        del timeout_ms
        self.polls += 1
        found: list[FakeRecord] = []
        for partition, start in sorted(self.positions.items()):
            taken = self.broker.topics[self.topic][partition][start : start + max_records - len(found)]
            found.extend(taken)
            self.positions[partition] = start + len(taken)
        return found

    def position(self, partition: int, timeout_s: float) -> int:
        del timeout_s
        return self.positions[partition]

    def close(self, timeout_s: float) -> None:
        del timeout_s
