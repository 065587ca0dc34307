"""Stage B of the worker: deferred claims judged against the member's history in their partition's local store.

A batch of repartition records is processed in order, each against the store *plus the batch's own changes so
far* (an overlay), so that a duplicate inside one batch is caught. Nothing is written to a store while the batch
is in flight: `commit()` writes the overlays once the batch's outputs (and, in exactly_once, its offsets) are
durable, and `discard()` drops them when the batch is rewound. So a store never holds what the changelog does
not, and a rewound batch is judged again against the same history.

Each change is also a changelog record (the entry, or a tombstone), on the changelog partition of the same
number, with the source offset in a header (`history.source.offset`) so that an at_least_once restore can skip
what a crashed batch wrote past the committed offset.

Entries expire by event time: an entry serviced more than `retention_days` before a claim's filing date is not
shown to that claim, and once the partition's stream time (the latest filing date it processed) passes that
bound, the entry is deleted and tombstoned.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from rules.engine import RuleEngine
from rules.history import judge
from schemas.history import DeferredClaim, HistoryLine
from schemas.parsing import DeadLetterReason
from schemas.verdict import ClaimValidated
from worker.evaluator import DeadLettered, Evaluation, Verdict
from worker.history.keys import entry_key, parse_entry_key
from worker.history.store import PartitionStore, StoreCheckpoint, StoreError
from worker.kafka_io import Record
from worker.routing import OutputRecord

SOURCE_OFFSET_HEADER = "history.source.offset"
# Expired entries tombstoned per partition and batch, at most (a long-idle partition catches up over batches).
SWEEP_LIMIT = 5_000

_serialize_verdict = ClaimValidated.__pydantic_serializer__.to_json
_serialize_line = HistoryLine.__pydantic_serializer__.to_json
_read_deferred = DeferredClaim.model_validate_json
_read_line = HistoryLine.model_validate_json


@dataclass(slots=True)
class _PartitionChanges:
    """One partition's changes in a batch: entry key -> new value (None deletes), by member, plus offsets."""

    by_member: dict[str, dict[bytes, bytes | None]] = field(default_factory=dict)
    next_source_offset: int = 0
    stream_day: dt.date | None = None

    def set(self, member_key: str, key: bytes, value: bytes | None) -> None:
        self.by_member.setdefault(member_key, {})[key] = value

    def changes(self) -> Iterator[tuple[bytes, bytes | None]]:
        for member in self.by_member.values():
            yield from member.items()


@dataclass(slots=True)
class HistoryBatch:
    """What stage B made of a batch: each record's evaluation, the changelog records, the pending changes."""

    processed: list[tuple[Record, Evaluation]] = field(default_factory=list)
    changelog: list[OutputRecord] = field(default_factory=list)
    partitions: dict[int, _PartitionChanges] = field(default_factory=dict)
    lookups: int = 0


class HistoryStoreFailed(Exception):  # noqa: N818 - names what happened to the stores, like StoreError's callers
    """Stores of `partitions` could not be read or written: rebuild them from the changelog; nothing of the batch
    that read them is delivered (it is polled again)."""

    def __init__(self, partitions: frozenset[int], reason: str) -> None:
        super().__init__(f"history stores {sorted(partitions)}: {reason}")
        self.partitions = partitions
        self.reason = reason


class HistoryStage:
    """Judges deferred claims against `stores` (one per owned repartition partition, by partition number)."""

    def __init__(
        self, *, engine: RuleEngine, changelog_topic: str, stores: Mapping[int, PartitionStore], retention_days: int
    ) -> None:
        self._engine = engine
        self._changelog_topic = changelog_topic
        self._stores = stores
        self._retention = dt.timedelta(days=retention_days)
        self._stream_days: dict[int, dt.date] = {}

    @property
    def retention_days(self) -> int:
        return self._retention.days

    def process(self, records: Sequence[Record]) -> HistoryBatch:
        """Judge each repartition record, in order; every record gets one evaluation (a bad one a dead letter)."""
        batch = HistoryBatch()
        for record in records:
            began = time.perf_counter()
            try:
                evaluation = self._judge(record, batch, began)
            except StoreError as error:  # the store, not the record: no claim is dead-lettered for it
                raise HistoryStoreFailed(frozenset({record.partition}), str(error)) from None
            except Exception as error:  # noqa: BLE001 - the stage's one guard: one bad record never stops the worker
                reason = f"history stage failed: {type(error).__name__}"
                evaluation = DeadLettered(DeadLetterReason.INTERNAL_ERROR, reason, time.perf_counter() - began)
            batch.processed.append((record, evaluation))
            changes = batch.partitions.setdefault(record.partition, _PartitionChanges())
            changes.next_source_offset = record.offset + 1
        for partition, changes in batch.partitions.items():
            try:
                self._sweep(partition, changes, batch)
            except StoreError as error:
                raise HistoryStoreFailed(frozenset({partition}), str(error)) from None
        return batch

    def _judge(self, record: Record, batch: HistoryBatch, began: float) -> Evaluation:
        deferred = _read_deferred(record.value or b"")
        facts = deferred.facts
        partition = record.partition
        store = self._stores[partition]
        changes = batch.partitions.setdefault(partition, _PartitionChanges())
        if changes.stream_day is None or facts.filed_on > changes.stream_day:
            changes.stream_day = facts.filed_on
        entries = self._member_history(store, changes, facts.member_key, visible_from=facts.filed_on - self._retention)
        batch.lookups += 1
        judgement = judge(facts, [line for _, line in entries], self._engine.policy)
        member_key = facts.member_key
        for key, line in entries:
            if line.claim_id in judgement.removed_claims:
                self._change(batch, record=record, member_key=member_key, key=key, value=None)
        for line in judgement.recorded:
            key = entry_key(member_key, line)
            self._change(batch, record=record, member_key=member_key, key=key, value=_serialize_line(line))
        verdict = self._engine.with_history(deferred.verdict, judgement)
        findings = tuple((finding.rule_id, finding.severity.value) for finding in verdict.findings)
        value = _serialize_verdict(verdict)
        return Verdict(verdict.claim_id, verdict.outcome, value, findings, time.perf_counter() - began)

    def _member_history(
        self, store: PartitionStore, changes: _PartitionChanges, member_key: str, *, visible_from: dt.date
    ) -> list[tuple[bytes, HistoryLine]]:
        """The member's entries: the store's, with this batch's changes over them; expired ones left out."""
        merged: dict[bytes, bytes | None] = dict(store.member_entries(member_key))
        merged.update(changes.by_member.get(member_key, {}))
        entries = []
        for key, value in merged.items():
            if value is None:
                continue
            line = _read_line(value)
            if line.service_date >= visible_from:
                entries.append((key, line))
        return entries

    def _change(self, batch: HistoryBatch, *, record: Record, member_key: str, key: bytes, value: bytes | None) -> None:
        batch.partitions[record.partition].set(member_key, key, value)
        batch.changelog.append(
            OutputRecord(
                self._changelog_topic,
                key,
                value,
                [(SOURCE_OFFSET_HEADER, b"%d" % record.offset)],
                partition=record.partition,
                timestamp_ms=record.timestamp if record.timestamp >= 0 else None,
            )
        )

    def _sweep(self, partition: int, changes: _PartitionChanges, batch: HistoryBatch) -> None:
        """Tombstone the partition's entries that expired by its stream time (a bounded number per batch)."""
        day = changes.stream_day
        if day is None or day <= self._stream_days.get(partition, dt.date.min):
            return
        self._stream_days[partition] = day
        store = self._stores[partition]
        pending = dict(changes.changes())
        for key in store.serviced_before(day - self._retention, limit=SWEEP_LIMIT):
            if pending.get(key, b"") is None:
                continue  # already deleted in this batch
            member_key = parse_entry_key(key).member_key
            changes.set(member_key, key, None)
            batch.changelog.append(
                OutputRecord(
                    self._changelog_topic,
                    key,
                    None,
                    [(SOURCE_OFFSET_HEADER, b"%d" % (changes.next_source_offset - 1))],
                    partition=partition,
                    timestamp_ms=None,
                )
            )

    def commit(self, batch: HistoryBatch, changelog_next_offsets: Mapping[int, int]) -> None:
        """The batch is durable: write each partition's changes and checkpoint to its store.

        Raises `HistoryStoreFailed` naming the stores that could not be written (the others are); their changes are
        in the changelog, so a rebuild restores them.
        """
        failed: dict[int, str] = {}
        for partition, changes in batch.partitions.items():
            store = self._stores.get(partition)
            if store is None:
                continue  # revoked meanwhile: its next owner restores from the changelog
            changelog_offset = changelog_next_offsets.get(partition, store.checkpoint.changelog_offset)
            try:
                store.apply(
                    list(changes.changes()),
                    StoreCheckpoint(changelog_offset=changelog_offset, source_offset=changes.next_source_offset),
                )
            except StoreError as error:
                failed[partition] = str(error)
        if failed:
            raise HistoryStoreFailed(frozenset(failed), "; ".join(failed.values()))

    def discard(self, batch: HistoryBatch) -> None:
        """The batch is rewound: nothing of it was written, and its sweep is done again next time."""
        for partition in batch.partitions:
            self._stream_days.pop(partition, None)

    def __repr__(self) -> str:
        return f"<HistoryStage partitions={sorted(self._stores)} retention_days={self._retention.days}>"
