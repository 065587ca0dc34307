"""Partitions coming and going: commit what was processed before a partition is given up.

The loop finishes every batch (outputs durable, offsets committed) before it polls again, and kafka-python runs
rebalance callbacks only inside `poll()` and `close()`; so at revocation the only processed-but-uncommitted work
is what the sink holds as pending: offsets whose outputs were acknowledged but whose commit failed (e.g. with
`RebalanceInProgress`, which is exactly when a revocation follows). The handler has the sink commit those for the
revoked partitions while this member still owns them. Lost partitions (forced eviction) cannot be committed:
their new owner reprocesses from the last commit, within the at-least-once contract. In exactly_once mode
offsets travel inside each batch's transaction, so nothing is ever pending.
"""

from __future__ import annotations

import threading
from collections.abc import Collection, Iterable
from typing import Any

import structlog
from kafka.consumer.subscription_state import AsyncConsumerRebalanceListener

from worker.history.partitions import HistoryPartitions
from worker.kafka_io import TopicPartition
from worker.observer import Observer
from worker.sink import Sink


class RebalanceHandler:
    """The worker's side of a rebalance, independent of the Kafka client (the fakes in tests call it directly)."""

    def __init__(self, *, sink: Sink, observer: Observer, history: HistoryPartitions | None = None) -> None:
        """`history`: claim history's partitions (its repartition partitions are paused and restored first)."""
        self._sink = sink
        self._observer = observer
        self._history = history
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
            assigned = frozenset(self._assigned)
            total = len(assigned)
            self.rebalances += 1
        if self._history is not None:
            self._history.assigned(partitions)
        self._observer.partitions_assigned(sorted(partitions), assigned)
        self._log.info("kafka.partitions_assigned", partitions=_numbers(partitions), assigned_total=total)

    async def on_revoked(self, partitions: Collection[TopicPartition]) -> None:
        """Commit the partitions' pending offsets (through the sink), then give them up."""
        try:
            committed = await self._sink.commit_before_revoke(partitions)
            if committed:
                self._log.info("kafka.committed_before_revoke", partitions=committed)
        except Exception as error:  # noqa: BLE001 - duplicates at worst (at-least-once), never loss
            self._log.warning(
                "kafka.commit_failed", stage="revoke", partitions=_numbers(partitions), error=type(error).__name__
            )
        self._forget(partitions, lost=False)

    def on_lost(self, partitions: Collection[TopicPartition]) -> None:
        self._sink.forget(partitions)
        self._forget(partitions, lost=True)

    def _forget(self, partitions: Collection[TopicPartition], *, lost: bool) -> None:
        if self._history is not None:
            self._history.revoked(partitions)
        with self._lock:
            self._assigned.difference_update(partitions)
            assigned = frozenset(self._assigned)
            total = len(assigned)
            self.rebalances += 1
        self._observer.partitions_revoked(sorted(partitions), assigned, lost=lost)
        event = "kafka.partitions_lost" if lost else "kafka.partitions_revoked"
        (self._log.warning if lost else self._log.info)(event, partitions=_numbers(partitions), assigned_total=total)

    def __repr__(self) -> str:
        return f"<RebalanceHandler assigned={len(self.assigned)} rebalances={self.rebalances} sink={self._sink!r}>"


def _numbers(partitions: Iterable[TopicPartition]) -> list[str]:
    # "topic-partition": with claim history on, the worker owns partitions of two topics.
    return [f"{tp.topic}-{tp.partition}" for tp in sorted(partitions)]


def _ours(partitions: Iterable[Any]) -> set[TopicPartition]:
    return {TopicPartition(tp.topic, tp.partition) for tp in partitions}


class KafkaRebalanceListener(AsyncConsumerRebalanceListener):  # type: ignore[misc]  # untyped base
    """kafka-python listener (runs on the consumer's IO loop), delegating to a `RebalanceHandler`.

    Asynchronous on purpose: a synchronous listener may not block on the consumer (kafka-python 3.0 raises),
    while an `async` one can await the commit and keep heartbeats flowing meanwhile.
    """

    def __init__(self, handler: RebalanceHandler) -> None:
        self._handler = handler

    async def on_partitions_revoked(self, revoked: Any) -> None:
        await self._handler.on_revoked(_ours(revoked))

    async def on_partitions_assigned(self, assigned: Any) -> None:
        self._handler.on_assigned(_ours(assigned))

    async def on_partitions_lost(self, lost: Any) -> None:
        self._handler.on_lost(_ours(lost))
