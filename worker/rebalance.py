"""Partitions coming and going: commit what was processed before a partition is given up.

The loop finishes every batch (outputs acknowledged, offsets committed) before it polls again, and kafka-python
runs rebalance callbacks only inside `poll()` and `close()`; so at revocation the only processed-but-uncommitted
work is what `PendingOffsets` holds: offsets whose outputs were acknowledged but whose commit failed (e.g. with
`RebalanceInProgress`, which is exactly when a revocation follows). The listener commits those for the revoked
partitions while this member still owns them, then forgets them. Lost partitions (forced eviction) cannot be
committed: their new owner reprocesses from the last commit, within the at-least-once contract.

In exactly_once mode offsets travel inside each batch's transaction, so nothing is ever pending here.
"""

from __future__ import annotations

import threading
from collections.abc import Collection, Iterable, Mapping
from typing import Any

import structlog
from kafka.consumer.subscription_state import AsyncConsumerRebalanceListener
from kafka.structs import OffsetAndMetadata
from kafka.structs import TopicPartition as KafkaTopicPartition

from worker.kafka_io import TopicPartition
from worker.observer import LoopObserver


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


class RebalanceHandler:
    """The worker's side of a rebalance, independent of the Kafka client (the fakes in tests call it directly)."""

    def __init__(self, *, pending: PendingOffsets, observer: LoopObserver) -> None:
        self._pending = pending
        self._observer = observer
        self._assigned: set[TopicPartition] = set()
        self._lock = threading.Lock()
        self._log = structlog.get_logger()
        self.rebalances = 0

    @property
    def assigned(self) -> frozenset[TopicPartition]:
        with self._lock:
            return frozenset(self._assigned)

    def on_assigned(self, partitions: Collection[TopicPartition]) -> None:
        with self._lock:
            self._assigned.update(partitions)
            total = len(self._assigned)
            self.rebalances += 1
        self._observer.partitions_assigned(sorted(partitions), total)
        self._log.info("kafka.partitions_assigned", partitions=_numbers(partitions), assigned_total=total)

    def offsets_to_commit_before_revoke(self, partitions: Collection[TopicPartition]) -> dict[TopicPartition, int]:
        """Pending offsets of the partitions about to be revoked; the caller commits them, then `on_revoked`."""
        return self._pending.take(partitions)

    def on_revoked(self, partitions: Collection[TopicPartition], *, lost: bool = False) -> None:
        if lost:
            self._pending.take(partitions)
        with self._lock:
            self._assigned.difference_update(partitions)
            total = len(self._assigned)
            self.rebalances += 1
        self._observer.partitions_revoked(sorted(partitions), total, lost=lost)
        event = "kafka.partitions_lost" if lost else "kafka.partitions_revoked"
        (self._log.warning if lost else self._log.info)(event, partitions=_numbers(partitions), assigned_total=total)

    def __repr__(self) -> str:
        return (
            f"<RebalanceHandler assigned={len(self.assigned)} pending={len(self._pending)} "
            f"rebalances={self.rebalances}>"
        )


def _numbers(partitions: Iterable[TopicPartition]) -> list[int]:
    return sorted(tp.partition for tp in partitions)


def _ours(partitions: Iterable[Any]) -> set[TopicPartition]:
    return {TopicPartition(tp.topic, tp.partition) for tp in partitions}


class KafkaRebalanceListener(AsyncConsumerRebalanceListener):  # type: ignore[misc]  # untyped base
    """kafka-python listener (runs on the consumer's IO loop): commits pending offsets before revocation.

    Asynchronous on purpose: a synchronous listener may not block on the consumer (kafka-python 3.0 raises),
    while an `async` one can await `commit_async()` and keep heartbeats flowing meanwhile.
    """

    def __init__(self, handler: RebalanceHandler, consumer: Any) -> None:
        self._handler = handler
        self._consumer = consumer
        self._log = structlog.get_logger()

    async def on_partitions_revoked(self, revoked: Any) -> None:
        partitions = _ours(revoked)
        offsets = self._handler.offsets_to_commit_before_revoke(partitions)
        if offsets:
            commit = {
                KafkaTopicPartition(tp.topic, tp.partition): OffsetAndMetadata(offset, "", -1)
                for tp, offset in offsets.items()
            }
            try:
                await self._consumer.commit_async(commit)
                self._log.info("kafka.committed_before_revoke", partitions=_numbers(offsets))
            except Exception as error:  # noqa: BLE001 - duplicates at worst (at-least-once), never loss
                self._log.warning(
                    "kafka.commit_failed", stage="revoke", partitions=_numbers(offsets), error=type(error).__name__
                )
        self._handler.on_revoked(partitions)

    async def on_partitions_assigned(self, assigned: Any) -> None:
        self._handler.on_assigned(_ours(assigned))

    async def on_partitions_lost(self, lost: Any) -> None:
        self._handler.on_revoked(_ours(lost), lost=True)
