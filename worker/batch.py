"""One unit of the loop's work: a polled batch (`Batch`) and what came of it once delivered (`BatchResult`)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from schemas.parsing import DeadLetterReason
from schemas.verdict import Outcome
from worker.evaluator import DeadLettered, Evaluation, Verdict
from worker.kafka_io import Record, TopicPartition
from worker.routing import OutputRecord
from worker.sink import Delivery


@dataclass(frozen=True, slots=True)
class Batch:
    """A polled batch, in poll order, with the offsets it starts at and the ones to commit after it."""

    records: list[Record]
    first_offsets: dict[TopicPartition, int]
    next_offsets: dict[TopicPartition, int]
    partitions: tuple[int, ...]
    started: float  # monotonic seconds

    @classmethod
    def of(cls, polled: Mapping[TopicPartition, Sequence[Record]], started: float) -> Batch:
        parts = {tp: records for tp, records in polled.items() if records}
        return cls(
            records=[record for records in parts.values() for record in records],
            first_offsets={tp: records[0].offset for tp, records in parts.items()},
            next_offsets={tp: records[-1].offset + 1 for tp, records in parts.items()},
            partitions=tuple(sorted(tp.partition for tp in parts)),
            started=started,
        )


class Processed(NamedTuple):
    """One input record, its evaluation and the output record that answers it."""

    record: Record
    evaluation: Evaluation
    output: OutputRecord


@dataclass(frozen=True, slots=True)
class BatchResult:
    """One delivered batch: each record with its evaluation, in order; durations in seconds, times in epoch s."""

    processed: Sequence[Processed]
    partitions: tuple[int, ...]
    duration_s: float  # from the poll's return to the end of delivery
    delivered_at_s: float  # end-to-end latency of a record = this - its timestamp
    delivery: Delivery
    outcomes: Counter[Outcome] = field(default_factory=Counter)
    dead_letters: Counter[DeadLetterReason] = field(default_factory=Counter)
    findings: Counter[tuple[str, str]] = field(default_factory=Counter)  # (rule_id, severity)
    deferred: int = 0  # claims sent on to the claim-history stage (their verdicts come from there)
    history_lookups: int = 0  # member histories the claim-history stage read

    @classmethod
    def of(
        cls,
        processed: Sequence[Processed],
        *,
        partitions: tuple[int, ...],
        duration_s: float,
        delivered_at_s: float,
        delivery: Delivery,
        history_lookups: int = 0,
    ) -> BatchResult:
        """The result with its counts (one pass over the evaluations)."""
        outcomes: Counter[Outcome] = Counter()
        dead_letters: Counter[DeadLetterReason] = Counter()
        findings: Counter[tuple[str, str]] = Counter()
        deferred = 0
        for _, evaluation, _ in processed:
            if isinstance(evaluation, Verdict):
                outcomes[evaluation.outcome] += 1
                if evaluation.findings:
                    findings.update(evaluation.findings)
            elif isinstance(evaluation, DeadLettered):
                dead_letters[evaluation.reason] += 1
            else:
                deferred += 1
        return cls(
            processed,
            partitions,
            duration_s,
            delivered_at_s,
            delivery,
            outcomes,
            dead_letters,
            findings,
            deferred,
            history_lookups,
        )

    @property
    def records(self) -> int:
        """Records processed (both stages, when claim history is on)."""
        return len(self.processed)

    @property
    def outcomes_reached(self) -> int:
        """Claims brought to their outcome in this batch: verdicts and dead letters (not the deferred ones)."""
        return self.records - self.deferred

    def dead_lettered(self) -> list[tuple[Record, DeadLettered, OutputRecord]]:
        return [
            (record, evaluation, output)
            for record, evaluation, output in self.processed
            if isinstance(evaluation, DeadLettered)
        ]
