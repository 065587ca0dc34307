"""Where a batch's outputs go, and the one place that commits input offsets: the `Sink` port.

`deliver(outputs, offsets, budget, changelog)` makes a batch's outputs (and claim history's changelog records)
durable and then commits `offsets` (the next offset to read, per input partition), or raises `DeliveryFailed` with
nothing of the batch committed:

- `AtLeastOnceSink`: sends the changelog records and `flush()`es them, then every output and `flush()` (one wait
  for all acknowledgements), then a synchronous offset commit. A failed commit does not undo the outputs: the
  offsets stay pending and go with the next commit, or are committed by the rebalance listener before their
  partition is given up (`commit_before_revoke`).
- `ExactlyOnceSink`: outputs and offsets in one Kafka transaction
  (`send_offsets_to_transaction(offsets, consumer.group_metadata())`, then `commit_transaction()`); readers use
  read_committed, so an aborted batch is never seen. Nothing is ever pending.

After a failed delivery the loop decides (`worker.recovery.decide`) and, unless it stops, calls `recover()`:
the transaction is aborted and, on request, the producer replaced by a fresh one (a second replacement in a row
raises `ProducerUnrecoverableError`, which stops the loop). A producer whose abort failed is replaced too: the
new one's `init_transactions()` fences the old one and aborts its transaction.

`budget(limit_s)` says how long a blocking call may wait now (the loop bounds it by the outage clock and the
shutdown grace); `math.inf` means "as long as those allow".
"""

from __future__ import annotations

import contextlib
import math
import threading
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

import structlog

from worker.kafka_io import ConsumerPort, KafkaIOError, ProducerPort, TopicPartition
from worker.recovery import ProducerUnrecoverableError, Stage
from worker.routing import OutputRecord

WaitBudget = Callable[[float], float]


class TransactionOutcome(StrEnum):
    """How an exactly_once batch's transaction ended (the `outcome` label of `claims_transactions_total`)."""

    COMMITTED = "committed"
    ABORTED = "aborted"
    ABORT_FAILED = "abort_failed"


@dataclass(frozen=True, slots=True)
class Delivery:
    """A delivered batch: its outputs are durable. `committed` is False when only the offset commit failed."""

    committed: bool
    commit_error: KafkaIOError | None = None
    transaction: TransactionOutcome | None = None
    # The next offset of each changelog partition written in the batch (claim history's store checkpoints).
    changelog_offsets: Mapping[int, int] = field(default_factory=dict)


class DeliveryFailed(Exception):  # noqa: N818 - carries the classified error and its stage, like an envelope
    """The batch's outputs are not (all) durable and none of its offsets was committed."""

    def __init__(self, stage: Stage, error: KafkaIOError) -> None:
        super().__init__(f"{stage}: {error}")
        self.stage = stage
        self.error = error


class Sink(Protocol):
    """The output side of the loop (see the module docstring)."""

    @property
    def transactional(self) -> bool: ...
    def deliver(
        self,
        outputs: Iterable[OutputRecord],
        offsets: Mapping[TopicPartition, int],
        budget: WaitBudget,
        changelog: Sequence[OutputRecord] = (),
    ) -> Delivery: ...
    def recover(
        self, error: KafkaIOError, *, fresh_producer: bool, budget: WaitBudget
    ) -> TransactionOutcome | None: ...
    def commit_pending(self, budget: WaitBudget) -> KafkaIOError | None: ...
    async def commit_before_revoke(self, partitions: Collection[TopicPartition]) -> list[int]: ...
    def forget(self, partitions: Collection[TopicPartition]) -> None: ...
    def close(self, timeout_s: float, *, commit: bool) -> None: ...


def _send_all(producer: ProducerPort, outputs: Iterable[OutputRecord]) -> None:
    # The hot path: one call per output.
    send = producer.send
    for output in outputs:
        send(
            output.topic,
            key=output.key,
            value=output.value,
            headers=output.headers,
            partition=output.partition,
            timestamp_ms=output.timestamp_ms,
        )


def _send_changelog(producer: ProducerPort, changelog: Sequence[OutputRecord]) -> dict[int, Callable[[], int]]:
    """Send the changelog records; per changelog partition, what gives its last offset once they are durable."""
    last: dict[int, Callable[[], int]] = {}
    for record in changelog:
        if record.partition is None:
            raise ValueError("a changelog record needs its partition (that of its repartition record)")
        last[record.partition] = producer.send_tracked(
            record.topic,
            key=record.key,
            value=record.value,
            headers=record.headers,
            partition=record.partition,
            timestamp_ms=record.timestamp_ms,
        )
    return last


class PendingOffsets:
    """Acknowledged-but-uncommitted next offsets per partition (thread-safe: the listener runs on Kafka's IO thread)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._offsets: dict[TopicPartition, int] = {}

    def add(self, offsets: Mapping[TopicPartition, int]) -> None:
        with self._lock:
            for partition, offset in offsets.items():
                if offset > self._offsets.get(partition, -1):
                    self._offsets[partition] = offset

    def snapshot(self) -> dict[TopicPartition, int]:
        with self._lock:
            return dict(self._offsets)

    def committed(self, offsets: Mapping[TopicPartition, int]) -> None:
        """Forget entries that `offsets` covered (newer entries added meanwhile stay)."""
        with self._lock:
            for partition, offset in offsets.items():
                if self._offsets.get(partition, -1) <= offset:
                    self._offsets.pop(partition, None)

    def take(self, partitions: Iterable[TopicPartition]) -> dict[TopicPartition, int]:
        """Remove and return the entries of `partitions`."""
        with self._lock:
            return {tp: self._offsets.pop(tp) for tp in partitions if tp in self._offsets}

    def __len__(self) -> int:
        with self._lock:
            return len(self._offsets)

    def __repr__(self) -> str:
        return f"<PendingOffsets partitions={len(self)}>"


class _ProducerSlot:
    """The sink's current producer, and its replacement by `factory` after a non-retriable producer error."""

    def __init__(self, producer: ProducerPort, factory: Callable[[], ProducerPort] | None) -> None:
        self.producer: ProducerPort | None = producer
        self._factory = factory
        self._replacements_in_a_row = 0
        self._log = structlog.get_logger()

    def current(self) -> ProducerPort:
        if self.producer is None:
            if self._factory is None:
                raise ProducerUnrecoverableError("no producer, and no way to create one")
            self.producer = self._factory()
            self._log.info("kafka.producer_created")
        return self.producer

    def replace(self, error: KafkaIOError) -> None:
        """Discard the producer after `error`; the next `current()` creates a new one (once in a row)."""
        self._replacements_in_a_row += 1
        if self._replacements_in_a_row > 1:
            raise ProducerUnrecoverableError(f"a fresh producer failed the same way: {error}")
        self.discard(error)

    def discard(self, error: KafkaIOError) -> None:
        if self._factory is None:
            raise ProducerUnrecoverableError(f"the producer is broken and cannot be replaced: {error}")
        if self.producer is not None:
            with contextlib.suppress(KafkaIOError):  # it is being replaced because it is broken
                self.producer.close(0.0)
            self.producer = None
            self._log.warning("kafka.producer_discarded", reason=str(error))

    def succeeded(self) -> None:
        self._replacements_in_a_row = 0

    def close(self, timeout_s: float) -> None:
        if self.producer is not None:
            try:
                self.producer.close(timeout_s)
            except KafkaIOError as error:
                self._log.warning("kafka.close_failed", client="producer", error=str(error))


class AtLeastOnceSink:
    """Outputs acknowledged (`flush`), then offsets committed; a failed commit leaves them pending."""

    transactional = False

    def __init__(
        self,
        *,
        consumer: ConsumerPort,
        producer: ProducerPort,
        producer_factory: Callable[[], ProducerPort] | None = None,
        commit_timeout_s: float = 30.0,
        pending: PendingOffsets | None = None,
    ) -> None:
        """`producer_factory` builds a replacement after a non-retriable producer error (None: such an error stops
        the loop); `pending` starts the offsets still to commit (default: none). Raises ValueError for a
        transactional producer."""
        if producer.transactional:
            raise ValueError("at_least_once needs a producer without transactions")
        self._consumer = consumer
        self._producers = _ProducerSlot(producer, producer_factory)
        self._commit_timeout_s = commit_timeout_s
        self._pending = PendingOffsets() if pending is None else pending

    def deliver(
        self,
        outputs: Iterable[OutputRecord],
        offsets: Mapping[TopicPartition, int],
        budget: WaitBudget,
        changelog: Sequence[OutputRecord] = (),
    ) -> Delivery:
        try:
            producer = self._producers.current()
            changelog_offsets: dict[int, int] = {}
            if changelog:
                # The changelog first: once the verdicts are out, history must hold what they were judged on.
                sent = _send_changelog(producer, changelog)
                producer.flush(budget(math.inf))
                changelog_offsets = {partition: offset() + 1 for partition, offset in sent.items()}
            _send_all(producer, outputs)
            producer.flush(budget(math.inf))
        except KafkaIOError as error:
            raise DeliveryFailed(Stage.PRODUCE, error) from None
        self._producers.succeeded()
        self._pending.add(offsets)
        commit_error = self.commit_pending(budget)
        return Delivery(committed=commit_error is None, commit_error=commit_error, changelog_offsets=changelog_offsets)

    def recover(self, error: KafkaIOError, *, fresh_producer: bool, budget: WaitBudget) -> TransactionOutcome | None:
        if fresh_producer:
            self._producers.replace(error)
        return None

    def commit_pending(self, budget: WaitBudget) -> KafkaIOError | None:
        """Commit every pending offset; returns the error when that failed (the offsets then stay pending)."""
        offsets = self._pending.snapshot()
        if not offsets:
            return None
        try:
            self._consumer.commit(offsets, budget(self._commit_timeout_s))
        except KafkaIOError as error:
            return error
        self._pending.committed(offsets)
        return None

    async def commit_before_revoke(self, partitions: Collection[TopicPartition]) -> list[int]:
        """Commit the pending offsets of `partitions` while this member still owns them; their numbers."""
        offsets = self._pending.take(partitions)
        if offsets:
            await self._consumer.commit_during_rebalance(offsets)
        return sorted(tp.partition for tp in offsets)

    def forget(self, partitions: Collection[TopicPartition]) -> None:
        """Lost partitions (evicted): their pending offsets cannot be committed any more."""
        self._pending.take(partitions)

    @property
    def pending(self) -> dict[TopicPartition, int]:
        return self._pending.snapshot()

    def close(self, timeout_s: float, *, commit: bool) -> None:
        if commit:
            error = self.commit_pending(lambda _limit_s: timeout_s)
            if error is not None:
                structlog.get_logger().warning("kafka.commit_failed", stage="close", error=str(error))
        self._producers.close(timeout_s)

    def __repr__(self) -> str:
        return f"<AtLeastOnceSink pending={len(self._pending)} producer={self._producers.producer!r}>"


class ExactlyOnceSink:
    """Outputs and offsets in one Kafka transaction per batch."""

    transactional = True

    def __init__(
        self,
        *,
        consumer: ConsumerPort,
        producer: ProducerPort,
        producer_factory: Callable[[], ProducerPort] | None = None,
        abort_timeout_s: float = 30.0,
    ) -> None:
        """Raises ValueError for a producer without transactions."""
        if not producer.transactional:
            raise ValueError("exactly_once needs a transactional producer")
        self._consumer = consumer
        self._producers = _ProducerSlot(producer, producer_factory)
        self._abort_timeout_s = abort_timeout_s

    def deliver(
        self,
        outputs: Iterable[OutputRecord],
        offsets: Mapping[TopicPartition, int],
        budget: WaitBudget,
        changelog: Sequence[OutputRecord] = (),
    ) -> Delivery:
        try:
            producer = self._producers.current()
            producer.begin_transaction()
            sent = _send_changelog(producer, changelog)
            _send_all(producer, outputs)
            producer.commit_transaction(offsets, self._consumer.group_metadata(), budget(math.inf))
            changelog_offsets = {partition: offset() + 1 for partition, offset in sent.items()}
        except KafkaIOError as error:
            raise DeliveryFailed(Stage.TRANSACTION, error) from None
        self._producers.succeeded()
        return Delivery(committed=True, transaction=TransactionOutcome.COMMITTED, changelog_offsets=changelog_offsets)

    def recover(self, error: KafkaIOError, *, fresh_producer: bool, budget: WaitBudget) -> TransactionOutcome | None:
        outcome = None
        producer = self._producers.producer
        if producer is not None:
            try:
                producer.abort_transaction(budget(self._abort_timeout_s))
                outcome = TransactionOutcome.ABORTED
            except KafkaIOError as abort_error:
                # The producer is in an unknown state: a new one (whose init_transactions() fences this one and
                # aborts its transaction) is created before the next batch.
                structlog.get_logger().warning("kafka.abort_failed", error=str(abort_error))
                outcome = TransactionOutcome.ABORT_FAILED
                self._producers.discard(abort_error)
        if fresh_producer:
            self._producers.replace(error)
        return outcome

    def commit_pending(self, budget: WaitBudget) -> KafkaIOError | None:
        return None  # offsets are committed inside each batch's transaction

    async def commit_before_revoke(self, partitions: Collection[TopicPartition]) -> list[int]:
        return []

    def forget(self, partitions: Collection[TopicPartition]) -> None:
        pass

    def close(self, timeout_s: float, *, commit: bool) -> None:
        self._producers.close(timeout_s)

    def __repr__(self) -> str:
        return f"<ExactlyOnceSink producer={self._producers.producer!r}>"
