"""What the loop reports about its work, in one place (the metrics implement it; tests record it).

The loop builds one `BatchStats` per committed batch and hands it over after the commit, so observation never
sits between a claim and its outcome. `SafeObserver` guarantees that a failing observer never fails a claim.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any, Protocol

import structlog

from schemas.parsing import DeadLetterReason
from schemas.verdict import Outcome
from worker.kafka_io import TopicPartition


@dataclass(slots=True)
class BatchStats:
    """Counts and timings of one batch; durations in seconds, timestamps in epoch milliseconds."""

    records: int = 0
    outcomes: Counter[Outcome] = field(default_factory=Counter)
    dead_letters: Counter[DeadLetterReason] = field(default_factory=Counter)
    findings: Counter[tuple[str, str]] = field(default_factory=Counter)  # (rule_id, severity)
    validation_durations_s: list[float] = field(default_factory=list)
    record_timestamps_ms: list[int] = field(default_factory=list)
    partitions: tuple[int, ...] = ()
    duration_s: float = 0.0
    committed_at_s: float = 0.0  # epoch seconds of the commit: end-to-end latency = this - record timestamp


class LoopObserver(Protocol):
    """Hooks called by the loop and the rebalance listener. Implementations must be cheap and thread-safe."""

    def batch_committed(self, stats: BatchStats) -> None: ...
    def batch_retried(self, stage: str) -> None: ...
    def commit_succeeded(self) -> None: ...
    def commit_failed(self) -> None: ...
    def transaction_finished(self, outcome: str) -> None: ...
    def polled(self, at_s: float) -> None: ...
    def lag(self, partition: TopicPartition, records: int) -> None: ...
    def partitions_assigned(self, partitions: Collection[TopicPartition], total: int) -> None: ...
    def partitions_revoked(self, partitions: Collection[TopicPartition], total: int, *, lost: bool) -> None: ...
    def ready(self, is_ready: bool) -> None: ...


class NullObserver:
    """Observes nothing."""

    def batch_committed(self, stats: BatchStats) -> None:
        del stats

    def batch_retried(self, stage: str) -> None:
        del stage

    def commit_succeeded(self) -> None:
        pass

    def commit_failed(self) -> None:
        pass

    def transaction_finished(self, outcome: str) -> None:
        del outcome

    def polled(self, at_s: float) -> None:
        del at_s

    def lag(self, partition: TopicPartition, records: int) -> None:
        del partition, records

    def partitions_assigned(self, partitions: Collection[TopicPartition], total: int) -> None:
        del partitions, total

    def partitions_revoked(self, partitions: Collection[TopicPartition], total: int, *, lost: bool) -> None:
        del partitions, total, lost

    def ready(self, is_ready: bool) -> None:
        del is_ready


class SafeObserver:
    """Wraps an observer so that its exceptions are logged (once per hook) and swallowed."""

    def __init__(self, inner: LoopObserver) -> None:
        self._inner = inner
        self._failed_hooks: set[str] = set()
        self._log = structlog.get_logger()

    def _call(self, hook: str, *args: Any, **kwargs: Any) -> None:
        try:
            getattr(self._inner, hook)(*args, **kwargs)
        except Exception as error:  # noqa: BLE001 - observation must never fail a claim
            if hook not in self._failed_hooks:
                self._failed_hooks.add(hook)
                self._log.warning("metrics.observer_failed", hook=hook, error=type(error).__name__)

    def batch_committed(self, stats: BatchStats) -> None:
        self._call("batch_committed", stats)

    def batch_retried(self, stage: str) -> None:
        self._call("batch_retried", stage)

    def commit_succeeded(self) -> None:
        self._call("commit_succeeded")

    def commit_failed(self) -> None:
        self._call("commit_failed")

    def transaction_finished(self, outcome: str) -> None:
        self._call("transaction_finished", outcome)

    def polled(self, at_s: float) -> None:
        self._call("polled", at_s)

    def lag(self, partition: TopicPartition, records: int) -> None:
        self._call("lag", partition, records)

    def partitions_assigned(self, partitions: Collection[TopicPartition], total: int) -> None:
        self._call("partitions_assigned", partitions, total)

    def partitions_revoked(self, partitions: Collection[TopicPartition], total: int, *, lost: bool) -> None:
        self._call("partitions_revoked", partitions, total, lost=lost)

    def ready(self, is_ready: bool) -> None:
        self._call("ready", is_ready)

    def __repr__(self) -> str:
        return f"<SafeObserver inner={type(self._inner).__name__} failed_hooks={sorted(self._failed_hooks)}>"
