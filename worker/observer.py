"""What the loop reports about its work, in one place: observers with no-op hooks, called through one chain.

An observer subclasses `Observer` and overrides the hooks it cares about (dramatiq's middleware style): the
metrics (`worker.metrics.WorkerMetrics`) and the batch log lines (`worker.batch_log.BatchLog`) are the two the
worker runs. The loop and the rebalance handler call hooks on an `ObserverChain`, which calls every observer and
guarantees that a failing observer never fails a claim: its exception is logged once per hook and swallowed.

A batch is observed after its outputs are durable (`worker.batch.BatchResult`), so observation never sits between a
claim and its outcome.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from typing import Any

import structlog

from worker.batch import BatchResult
from worker.kafka_io import KafkaIOError, TopicPartition
from worker.recovery import Stage
from worker.sink import TransactionOutcome


class Observer:
    """Hooks called by the loop and the rebalance handler; each does nothing unless overridden.

    Hooks must be cheap and thread-safe: the partition hooks run on Kafka's IO thread.
    """

    def batch_delivered(self, result: BatchResult) -> None:
        """A batch's outputs are durable (and, unless `result.delivery.committed` is False, its offsets)."""

    def batch_retried(self, stage: Stage, error: KafkaIOError, partitions: tuple[int, ...]) -> None:
        """A batch's delivery failed at `stage`; nothing of it was committed and it will be processed again."""

    def commit_finished(self, error: KafkaIOError | None, partitions: tuple[int, ...]) -> None:
        """An offset commit succeeded (`error` None) or failed: at the end of a batch, or a retry of pending ones."""

    def transaction_finished(self, outcome: TransactionOutcome) -> None:
        """An exactly_once batch's transaction ended."""

    def polled(self, at_s: float) -> None:
        """A poll or broker probe succeeded at epoch second `at_s`."""

    def lag(self, partition: TopicPartition, records: int) -> None:
        """`records` behind the end of an input partition."""

    def partitions_assigned(self, partitions: Collection[TopicPartition], assigned: Collection[TopicPartition]) -> None:
        """`partitions` were assigned; `assigned` are assigned now (of every topic the worker reads)."""

    def partitions_revoked(
        self, partitions: Collection[TopicPartition], assigned: Collection[TopicPartition], *, lost: bool
    ) -> None:
        """`partitions` were revoked (or lost, without a chance to commit); `assigned` are assigned now."""

    def ready(self, is_ready: bool) -> None:
        """Readiness changed."""

    def history_restore_started(self, partition: int, records: int) -> None:
        """A repartition partition's store began its restore, `records` changelog records behind."""

    def history_restored(self, partition: int, records: int) -> None:
        """`records` changelog records were read into the partition's store."""

    def history_restore_finished(self, partition: int, records: int, duration_s: float) -> None:
        """The partition's restore ended (done, or stopped by a revocation) after `records` records."""

    def history_store_entries(self, partition: int, entries: int) -> None:
        """The partition's store holds about `entries` entries (reported between batches, now and then)."""

    def history_store_rebuilt(self, partition: int) -> None:
        """The partition's store was wiped (corrupt, unreadable, or ahead of its topics) and is restored anew."""


class ObserverChain(Observer):
    """Calls each hook on every observer in order; an observer's exception is logged (once per hook) and swallowed."""

    def __init__(self, observers: Sequence[Observer] = ()) -> None:
        self._observers = tuple(observers)
        self._failed_hooks: set[str] = set()
        self._log = structlog.get_logger()

    def _each(self, hook: str, call: Callable[[Any], None]) -> None:
        for observer in self._observers:
            try:
                call(observer)
            except Exception as error:  # noqa: BLE001 - observation must never fail a claim
                if hook not in self._failed_hooks:
                    self._failed_hooks.add(hook)
                    self._log.warning("metrics.observer_failed", hook=hook, error=type(error).__name__)

    def batch_delivered(self, result: BatchResult) -> None:
        self._each("batch_delivered", lambda observer: observer.batch_delivered(result))

    def batch_retried(self, stage: Stage, error: KafkaIOError, partitions: tuple[int, ...]) -> None:
        self._each("batch_retried", lambda observer: observer.batch_retried(stage, error, partitions))

    def commit_finished(self, error: KafkaIOError | None, partitions: tuple[int, ...]) -> None:
        self._each("commit_finished", lambda observer: observer.commit_finished(error, partitions))

    def transaction_finished(self, outcome: TransactionOutcome) -> None:
        self._each("transaction_finished", lambda observer: observer.transaction_finished(outcome))

    def polled(self, at_s: float) -> None:
        self._each("polled", lambda observer: observer.polled(at_s))

    def lag(self, partition: TopicPartition, records: int) -> None:
        self._each("lag", lambda observer: observer.lag(partition, records))

    def partitions_assigned(self, partitions: Collection[TopicPartition], assigned: Collection[TopicPartition]) -> None:
        self._each("partitions_assigned", lambda observer: observer.partitions_assigned(partitions, assigned))

    def partitions_revoked(
        self, partitions: Collection[TopicPartition], assigned: Collection[TopicPartition], *, lost: bool
    ) -> None:
        self._each("partitions_revoked", lambda observer: observer.partitions_revoked(partitions, assigned, lost=lost))

    def ready(self, is_ready: bool) -> None:
        self._each("ready", lambda observer: observer.ready(is_ready))

    def history_restore_started(self, partition: int, records: int) -> None:
        self._each("history_restore_started", lambda observer: observer.history_restore_started(partition, records))

    def history_restored(self, partition: int, records: int) -> None:
        self._each("history_restored", lambda observer: observer.history_restored(partition, records))

    def history_restore_finished(self, partition: int, records: int, duration_s: float) -> None:
        self._each(
            "history_restore_finished",
            lambda observer: observer.history_restore_finished(partition, records, duration_s),
        )

    def history_store_entries(self, partition: int, entries: int) -> None:
        self._each("history_store_entries", lambda observer: observer.history_store_entries(partition, entries))

    def history_store_rebuilt(self, partition: int) -> None:
        self._each("history_store_rebuilt", lambda observer: observer.history_store_rebuilt(partition))

    def __repr__(self) -> str:
        names = ",".join(type(observer).__name__ for observer in self._observers)
        return f"<ObserverChain observers={names} failed_hooks={sorted(self._failed_hooks)}>"
