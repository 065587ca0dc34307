"""What a polled batch becomes: evaluations, and the output records that answer them.

- Stage A, the single-claim rules, for records of the input topic (`worker.evaluator`, in this thread or in the
  children). With claim history on, a claim with drug lines is deferred: its output is a record on the
  repartition topic, keyed by its member key, and its verdict comes from stage B.
- Stage B, the cross-claim checks, for records of the repartition topic (`worker.history`), in this thread, in
  the order of each partition; it also writes the batch's changelog records.

One consumer group reads both topics, like a Kafka Streams application: a batch may hold records of either, and
its outputs, changelog records and the offsets of both are delivered together (one transaction in exactly_once).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from itertools import chain

from worker.batch import Processed
from worker.evaluator import Evaluation, Evaluator
from worker.history.partitions import HistoryPartitions
from worker.history.stage import HistoryBatch, HistoryStage, HistoryStoreFailed
from worker.kafka_io import Record
from worker.routing import OutputRecord, Routes, route
from worker.sink import Delivery


@dataclass(frozen=True, slots=True)
class HistoryRuntime:
    """Claim history in the worker: the repartition topic, its partitions' stores, and the stage using them."""

    topic: str
    partitions: HistoryPartitions
    stage: HistoryStage


@dataclass(slots=True)
class BatchWork:
    """A batch on its way out: `outputs` are produced lazily (stage A evaluates while the sink sends)."""

    processed: list[Processed]
    outputs: Iterator[OutputRecord]
    changelog: Sequence[OutputRecord] = ()
    history: HistoryBatch | None = field(default=None)
    _stage: HistoryStage | None = None

    @property
    def lookups(self) -> int:
        return 0 if self.history is None else self.history.lookups

    def delivered(self, delivery: Delivery) -> None:
        """The batch is durable: claim history writes what it changed to its stores. Raises `HistoryStoreFailed`
        for stores that could not be written (what they missed is in the changelog: rebuild them)."""
        if self.history is not None and self._stage is not None:
            self._stage.commit(self.history, delivery.changelog_offsets)

    def rewound(self) -> None:
        """The batch is processed again: claim history forgets its changes."""
        if self.history is not None and self._stage is not None:
            self._stage.discard(self.history)


class Stages:
    """Turns batches into outputs (see the module docstring)."""

    def __init__(self, *, evaluator: Evaluator, routes: Routes, history: HistoryRuntime | None = None) -> None:
        self._evaluator = evaluator
        self._routes = routes
        self._history = history

    @property
    def history(self) -> HistoryRuntime | None:
        return self._history

    @property
    def restoring(self) -> bool:
        """Claim history is restoring a store: the loop should not wait long in its poll meanwhile."""
        return self._history is not None and bool(self._history.partitions.restoring)

    def maintain(self) -> None:
        """Between batches: claim history's partition changes and restores. Raises `KafkaIOError`."""
        if self._history is not None:
            self._history.partitions.maintain()

    def begin(self, records: Sequence[Record]) -> BatchWork:
        """Start a batch: stage A's evaluation is under way when this returns, stage B's is done.

        Raises `HistoryStoreFailed` when a store cannot be read: nothing of the batch is delivered (see `rebuild`).
        """
        history = self._history
        if history is None:
            processed: list[Processed] = []
            return BatchWork(processed, self._routed(records, self._evaluator.evaluate(records), processed))
        claims = [record for record in records if record.topic != history.topic]
        repartitioned = [record for record in records if record.topic == history.topic]
        waiting = history.partitions.restoring | (
            {record.partition for record in repartitioned} - set(history.partitions.stores)
        )
        if any(record.partition in waiting for record in repartitioned):
            # Partitions are paused until restored; records of one mean the pause failed: stop rather than judge.
            raise RuntimeError(f"records of repartition partitions {sorted(waiting)} came before their restore")
        evaluations = self._evaluator.evaluate(claims)  # the children start on stage A now
        try:
            judged = history.stage.process(repartitioned)
        except HistoryStoreFailed:
            for _ in evaluations:  # collect stage A's results from the children: the whole batch is polled again
                pass
            raise
        processed = []
        routes = self._routes
        for record, evaluation in judged.processed:
            processed.append(Processed(record, evaluation, route(record, evaluation, routes)))
        outputs = chain([entry.output for entry in processed], self._routed(claims, evaluations, processed))
        return BatchWork(processed, outputs, judged.changelog, judged, history.stage)

    def rebuild(self, failed: HistoryStoreFailed) -> None:
        """Rebuild the stores that failed from the changelog (their partitions wait meanwhile). Raises
        `KafkaIOError`."""
        if self._history is not None:
            self._history.partitions.rebuild(failed.partitions, failed.reason)

    def _routed(
        self, records: Sequence[Record], evaluations: Iterator[Evaluation], processed: list[Processed]
    ) -> Iterator[OutputRecord]:
        # The hot path, evaluated lazily while the sink sends: no logging, no metric calls.
        routes = self._routes
        for record, evaluation in zip(records, evaluations, strict=True):
            output = route(record, evaluation, routes)
            processed.append(Processed(record, evaluation, output))
            yield output

    def __repr__(self) -> str:
        return f"<Stages history={self._history is not None} evaluator={self._evaluator!r}>"
