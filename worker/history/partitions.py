"""The owned repartition partitions of claim history: their stores, each restored from the changelog first.

On assignment (in the rebalance callback) a partition is paused at once, so none of its records is processed
before its store is complete. Between batches the loop's thread then (`maintain`):

1. opens the partition's store (a store that fails to open is wiped);
2. reads the changelog's high watermark through a read_uncommitted view (so that a crashed writer's open
   transaction cannot make the restore end early) and the group's committed offset of the partition;
3. wipes the store if it is ahead of either (a store whose checkpoint is past the changelog's end, e.g. a
   recreated topic; or one holding effects of records past the committed offset, possible in at_least_once
   after a crash), then reads the changelog from the store's checkpoint to the high watermark, a bounded chunk
   per loop iteration so that the loop keeps polling and the group keeps its member. Changelog records whose
   source offset is at or past the committed offset (written by a batch that was never committed) are skipped:
   that batch is processed again;
4. resumes the partition.

On revocation the store is closed (a rebalance in the middle of a restore stops it; the checkpoint keeps what was
read). Lost partitions are closed the same way.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import structlog

from worker.history.stage import SOURCE_OFFSET_HEADER
from worker.history.store import (
    EMPTY_CHECKPOINT,
    PartitionStore,
    StoreCheckpoint,
    StoreError,
    StoreMemory,
    is_entry_key,
    wipe_store,
)
from worker.kafka_io import KafkaIOError, Record, TopicPartition
from worker.observer import Observer

# How often the stores' sizes are reported (RocksDB's estimate is cheap, but not free).
ENTRIES_REPORT_INTERVAL_S = 30.0
# Changelog records read per restore step (and loop iteration), at most.
RESTORE_STEP_RECORDS = 20_000
RESTORE_STEP_TIMEOUT_MS = 200


class ChangelogReader(Protocol):
    """Reads changelog partitions from given offsets, outside any consumer group (restores)."""

    def high_watermarks(self, partitions: Sequence[int], timeout_s: float) -> dict[int, int]:
        """The end offsets as a read_uncommitted reader sees them (past any open transaction)."""
        ...

    def assign(self, starts: Mapping[int, int]) -> None:
        """Read these partitions from these offsets (replacing the previous assignment)."""
        ...

    def poll(self, timeout_ms: int, max_records: int) -> Sequence[Record]: ...
    def position(self, partition: int, timeout_s: float) -> int: ...
    def close(self, timeout_s: float) -> None: ...


class PartitionControl(Protocol):
    """What the history needs of the group consumer: flow control and the committed offsets."""

    def pause(self, partitions: Collection[TopicPartition]) -> None: ...
    def resume(self, partitions: Collection[TopicPartition]) -> None: ...
    def committed(self, partitions: Sequence[TopicPartition], timeout_s: float) -> dict[TopicPartition, int | None]: ...
    def seek(self, partition: TopicPartition, offset: int) -> None: ...


@dataclass(slots=True)
class _Restore:
    store: PartitionStore
    target: int  # the changelog's high watermark when the restore began
    committed: int  # the group's committed offset of the repartition partition
    started: float
    records: int = 0
    skipped: int = 0
    foreign: int = 0


class HistoryPartitions:
    """Stores of the owned repartition partitions (`stores`: the ready ones), restored before they are used."""

    def __init__(
        self,
        *,
        consumer: PartitionControl,
        changelog: ChangelogReader,
        repartition_topic: str,
        state_dir: Path | None,
        memory: StoreMemory,
        observer: Observer,
        request_timeout_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """`state_dir` None keeps the stores in memory (rebuilt at every start)."""
        self._consumer = consumer
        self._changelog = changelog
        self._topic = repartition_topic
        self._state_dir = state_dir
        self._memory = memory
        self._observer = observer
        self._timeout_s = request_timeout_s
        self._clock = clock
        self.stores: dict[int, PartitionStore] = {}
        self._restoring: dict[int, _Restore] = {}
        self._events: list[tuple[str, frozenset[int]]] = []
        self._lock = threading.Lock()
        self._log = structlog.get_logger()
        self._entries_reported = float("-inf")

    # --- from the rebalance callback (Kafka's IO thread) -----------------------------------------------------------

    def assigned(self, partitions: Collection[TopicPartition]) -> None:
        mine = [tp for tp in partitions if tp.topic == self._topic]
        if mine:
            self._consumer.pause(mine)
            self._queue("assigned", mine)

    def revoked(self, partitions: Collection[TopicPartition]) -> None:
        mine = [tp for tp in partitions if tp.topic == self._topic]
        if mine:
            self._queue("revoked", mine)

    def _queue(self, event: str, partitions: Collection[TopicPartition]) -> None:
        with self._lock:
            self._events.append((event, frozenset(tp.partition for tp in partitions)))

    # --- between batches (the loop's thread) -----------------------------------------------------------------------

    @property
    def restoring(self) -> frozenset[int]:
        return frozenset(self._restoring)

    def maintain(self) -> None:
        """Handle assignments and revocations since the last call, then one bounded restore step.

        Raises `KafkaIOError` when the broker cannot be read (the loop backs off and calls again).
        """
        with self._lock:
            events, self._events = self._events, []
        for event, partitions in events:
            for partition in sorted(partitions):
                self._close(partition)
            if event == "assigned":
                self._begin(sorted(partitions))
        if self._restoring:
            self._restore_step()
        if self._clock() - self._entries_reported >= ENTRIES_REPORT_INTERVAL_S:
            self._entries_reported = self._clock()
            for partition, entries in self.entries().items():
                self._observer.history_store_entries(partition, entries)

    def rebuild(self, partitions: Collection[int], reason: str) -> None:
        """Wipe the stores of `partitions` (owned, and found unreadable or unwritable) and restore them from the
        changelog, their repartition partitions paused meanwhile and then read again from the committed offset.
        Raises `KafkaIOError` (the loop backs off; a store that was not reopened is rebuilt at the next assignment)."""
        owned = sorted(set(partitions) & (set(self.stores) | set(self._restoring)))
        if not owned:
            return
        self._consumer.pause([TopicPartition(self._topic, partition) for partition in owned])
        for partition in owned:
            self._log.warning("history.store_rebuilt", partition=partition, reason=reason)
            self._observer.history_store_rebuilt(partition)
            self._close(partition)
        self._begin(owned, rebuild=True)

    def _begin(self, partitions: list[int], *, rebuild: bool = False) -> None:
        topic_partitions = [TopicPartition(self._topic, partition) for partition in partitions]
        committed = self._consumer.committed(topic_partitions, self._timeout_s)
        ends = self._changelog.high_watermarks(partitions, self._timeout_s)
        for partition in partitions:
            target = ends.get(partition, 0)
            source = committed.get(TopicPartition(self._topic, partition)) or 0
            if rebuild:  # the partition is read again from where the store will stand
                self._consumer.seek(TopicPartition(self._topic, partition), source)
            store = self._open(partition, wipe=rebuild)
            checkpoint = store.checkpoint
            if checkpoint.changelog_offset > target or checkpoint.source_offset > source:
                why = (
                    "past the changelog's end" if checkpoint.changelog_offset > target else "past the committed offset"
                )
                self._log.warning("history.store_rebuilt", partition=partition, reason=why)
                self._observer.history_store_rebuilt(partition)
                store.close()  # its lock first: the wiped store is reopened on the same path
                store = self._open(partition, wipe=True)
            restore = _Restore(store, target=target, committed=source, started=self._clock())
            self._restoring[partition] = restore
            self._observer.history_restore_started(partition, max(0, target - store.checkpoint.changelog_offset))
        self._changelog.assign({p: r.store.checkpoint.changelog_offset for p, r in self._restoring.items()})
        self._finish_caught_up()

    def _restore_step(self) -> None:
        by_partition: dict[int, list[Record]] = {}
        for record in self._changelog.poll(RESTORE_STEP_TIMEOUT_MS, RESTORE_STEP_RECORDS):
            by_partition.setdefault(record.partition, []).append(record)
        for partition, records in by_partition.items():
            restore = self._restoring.get(partition)
            if restore is None:
                continue
            changes = []
            for record in records:
                if not is_entry_key(record.key):
                    restore.foreign += 1  # not written by a worker: left alone
                elif _source_offset(record) >= restore.committed:
                    restore.skipped += 1
                else:
                    changes.append((record.key or b"", record.value))
            restore.records += len(records)
            restore.store.apply(changes, StoreCheckpoint(records[-1].offset + 1, restore.committed))
            self._observer.history_restored(partition, len(records))
        self._finish_caught_up()

    def _finish_caught_up(self) -> None:
        done = [
            partition
            for partition, restore in self._restoring.items()
            if self._changelog.position(partition, self._timeout_s) >= restore.target
        ]
        if not done:
            return
        for partition in done:
            restore = self._restoring.pop(partition)
            if restore.store.checkpoint.source_offset != restore.committed:
                # Nothing was left to read: record that the store now reflects the committed offset.
                restore.store.apply([], StoreCheckpoint(restore.store.checkpoint.changelog_offset, restore.committed))
            self.stores[partition] = restore.store
            self._observer.history_store_entries(partition, restore.store.estimated_entries())
            duration = self._clock() - restore.started
            self._observer.history_restore_finished(partition, restore.records, duration)
            self._log.info(
                "history.restored",
                partition=partition,
                records=restore.records,
                skipped=restore.skipped,
                foreign=restore.foreign or None,
                duration_s=round(duration, 3),
            )
        self._consumer.resume([TopicPartition(self._topic, partition) for partition in done])
        self._changelog.assign({p: r.store.checkpoint.changelog_offset for p, r in self._restoring.items()})

    def _open(self, partition: int, *, wipe: bool = False) -> PartitionStore:
        path = self._path(partition)
        if wipe and path is not None:
            wipe_store(path)
        try:
            return PartitionStore(path, self._memory, name=f"{self._topic}-{partition}")
        except StoreError as error:
            self._log.warning("history.store_rebuilt", partition=partition, reason=str(error))
            self._observer.history_store_rebuilt(partition)
            if path is not None:
                wipe_store(path)
            return PartitionStore(path, self._memory, name=f"{self._topic}-{partition}")

    def _path(self, partition: int) -> Path | None:
        if self._state_dir is None:
            return None
        return self._state_dir / f"{re.sub(r'[^A-Za-z0-9._-]', '_', self._topic)}-{partition}"

    def _close(self, partition: int) -> None:
        store = self.stores.pop(partition, None)
        restore = self._restoring.pop(partition, None)
        for closing in (store, restore.store if restore is not None else None):
            if closing is not None:
                closing.close()
        if restore is not None:
            self._log.info("history.restore_stopped", partition=partition, records=restore.records)
            self._observer.history_restore_finished(partition, restore.records, self._clock() - restore.started)

    def entries(self) -> dict[int, int]:
        """About how many entries each ready store holds."""
        return {partition: store.estimated_entries() for partition, store in self.stores.items()}

    def close(self) -> None:
        for partition in sorted({*self.stores, *self._restoring}):
            self._close(partition)
        try:
            self._changelog.close(2.0)
        except KafkaIOError as error:
            self._log.warning("kafka.close_failed", client="changelog", error=str(error))

    def __repr__(self) -> str:
        return f"<HistoryPartitions ready={sorted(self.stores)} restoring={sorted(self._restoring)}>"


def _source_offset(record: Record) -> int:
    for name, value in record.headers:
        if name == SOURCE_OFFSET_HEADER:
            return int(value)
    return -1  # written without one: applied


__all__ = ["EMPTY_CHECKPOINT", "ChangelogReader", "HistoryPartitions", "PartitionControl"]
