"""Prometheus metrics of the worker (prefix `claims_`, base units, closed label sets) and the loop observer.

Every metric lives in the registry passed in (tests use a fresh one). Label children are resolved once, at
start-up or on first use of a rule id, never per claim; claim ids and patient data never become labels.
"""

from __future__ import annotations

import threading
from collections.abc import Collection

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info

from schemas.parsing import DeadLetterReason
from schemas.verdict import Outcome, RuleSetRef, Severity
from worker.batch import BatchResult
from worker.evaluator import Deferred
from worker.kafka_io import KafkaIOError, TopicPartition
from worker.observer import Observer
from worker.recovery import Stage
from worker.sink import TransactionOutcome

# Validation of one claim takes tens of microseconds to a few milliseconds.
VALIDATION_BUCKETS_S = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)
# End to end (record timestamp to committed verdict): milliseconds when keeping up, minutes when catching up.
LATENCY_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0)
BATCH_RECORD_BUCKETS = (1, 5, 10, 25, 50, 100, 250, 500, 1000, 2000, 5000)
# A restore takes milliseconds (a store that is up to date) to minutes (rebuilding a large one).
RESTORE_DURATION_BUCKETS_S = (0.01, 0.1, 0.5, 1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0)
BATCH_DURATION_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

REBALANCE_EVENTS = ("assigned", "revoked", "lost")
# Rule ids come from the rule set (code), not from claims; the cap only guards against a rule-set bug.
MAX_RULE_LABELS = 1000
OTHER_RULE = "other"


class WorkerMetrics(Observer):
    """The worker's metrics in `registry`, kept up to date as an observer of the loop."""

    def __init__(self, registry: CollectorRegistry, *, version: str, ruleset: RuleSetRef) -> None:
        self.registry = registry
        self._define_work_metrics(registry)
        self._define_kafka_metrics(registry)
        self._define_history_metrics(registry)
        self.ready_gauge = Gauge("claims_ready", "1 when the worker reports ready.", registry=registry)
        self.build_info = Info("claims_build", "Worker version and rule set.", registry=registry)
        self.build_info.info({"version": version, "ruleset_id": ruleset.id, "ruleset_version": ruleset.version})

        # Pre-resolved children: the closed label sets exist (at 0) from start-up.
        self._verdicts = {outcome: self.verdicts.labels(outcome=outcome.value) for outcome in Outcome}
        self._dead_letters = {reason: self.dead_letters.labels(reason=reason.value) for reason in DeadLetterReason}
        self._rebalances = {event: self.rebalances.labels(event=event) for event in REBALANCE_EVENTS}
        self._transactions = {
            outcome: self.transactions.labels(outcome=outcome.value) for outcome in TransactionOutcome
        }
        self._retries = {stage: self.batch_retries.labels(stage=stage.value) for stage in Stage}
        self._findings: dict[tuple[str, str], Counter] = {}
        self._lag: dict[TopicPartition, Gauge] = {}
        self._restoring: set[int] = set()
        self._lock = threading.Lock()

    def _define_work_metrics(self, registry: CollectorRegistry) -> None:
        """What was validated: records, verdicts, findings, dead letters, and how long it took."""
        self.consumed = Counter(
            "claims_consumed",
            "Claim records consumed and brought to their outcome (a verdict or a dead letter).",
            registry=registry,
        )
        self.deferred = Counter(
            "claims_history_deferred",
            "Claims with drug lines sent on to the claim-history stage (their verdicts come from there).",
            registry=registry,
        )
        self.verdicts = Counter("claims_verdicts", "Verdicts published, by outcome.", ["outcome"], registry=registry)
        self.findings = Counter(
            "claims_findings",
            "Findings in published verdicts, by rule and severity.",
            ["rule_id", "severity"],
            registry=registry,
        )
        self.dead_letters = Counter(
            "claims_dead_letters", "Records sent to the dead-letter topic, by reason.", ["reason"], registry=registry
        )
        self.validation_duration = Histogram(
            "claims_validation_duration_seconds",
            "Time to evaluate one record: parse and rules, or the claim-history stage's judgement.",
            buckets=VALIDATION_BUCKETS_S,
            registry=registry,
        )
        self.end_to_end_latency = Histogram(
            "claims_end_to_end_latency_seconds",
            "From the input record's timestamp to the commit of its output.",
            buckets=LATENCY_BUCKETS_S,
            registry=registry,
        )
        self.batch_records = Histogram(
            "claims_batch_records", "Records per processed batch.", buckets=BATCH_RECORD_BUCKETS, registry=registry
        )
        self.batch_duration = Histogram(
            "claims_batch_duration_seconds",
            "From poll to commit of one batch.",
            buckets=BATCH_DURATION_BUCKETS_S,
            registry=registry,
        )

    def _define_history_metrics(self, registry: CollectorRegistry) -> None:
        """Claim history: its stores' restores, sizes and lookups (labels: repartition partition numbers only)."""
        self.restored_records = Counter(
            "claims_history_restored_records",
            "Changelog records read into claim-history stores by restores.",
            ["partition"],
            registry=registry,
        )
        self.history_restore_duration = Histogram(
            "claims_history_restore_duration_seconds",
            "Duration of a claim-history store restore (from assignment to the partition's resumption).",
            buckets=RESTORE_DURATION_BUCKETS_S,
            registry=registry,
        )
        self.history_restoring = Gauge(
            "claims_history_restoring_partitions",
            "Repartition partitions whose store is being restored (their claims wait).",
            registry=registry,
        )
        self.history_restore_remaining = Gauge(
            "claims_history_restore_remaining_records",
            "Changelog records a restore still has to read, at most (aborted and skipped records count).",
            ["partition"],
            registry=registry,
        )
        self.history_entries = Gauge(
            "claims_history_store_entries",
            "Entries (drug lines) in a claim-history store, as RocksDB estimates them.",
            ["partition"],
            registry=registry,
        )
        self.history_lookups = Counter(
            "claims_history_lookups", "Member histories read by the cross-claim checks.", registry=registry
        )
        self.history_rebuilds = Counter(
            "claims_history_store_rebuilds",
            "Claim-history stores wiped and restored anew from the changelog (corrupt, unreadable or ahead).",
            registry=registry,
        )

    def _define_kafka_metrics(self, registry: CollectorRegistry) -> None:
        """The consumer group and the delivery: lag, partitions, rebalances, commits, transactions, retries."""
        self.consumer_lag = Gauge(
            "claims_consumer_lag_records",
            "Records behind the end of the input partition.",
            ["topic", "partition"],
            registry=registry,
        )
        self.assigned_partitions = Gauge(
            "claims_assigned_partitions",
            "Partitions assigned to this worker, by topic (the input topic, and claim history's repartition topic).",
            ["topic"],
            registry=registry,
        )
        self.rebalances = Counter(
            "claims_rebalances", "Rebalance events seen by this worker.", ["event"], registry=registry
        )
        self.commits = Counter("claims_commits", "Successful offset commits (batches).", registry=registry)
        self.commit_failures = Counter("claims_commit_failures", "Failed offset commits.", registry=registry)
        self.transactions = Counter(
            "claims_transactions",
            "Kafka transactions finished (exactly_once), by outcome.",
            ["outcome"],
            registry=registry,
        )
        self.batch_retries = Counter(
            "claims_batch_retries",
            "Batches (or polls) retried after a failure, by stage.",
            ["stage"],
            registry=registry,
        )
        self.last_poll = Gauge(
            "claims_last_successful_poll_timestamp_seconds",
            "Unix time of the last poll or broker probe that succeeded.",
            registry=registry,
        )

    # --- Observer -------------------------------------------------------------------------------------------------

    def batch_delivered(self, result: BatchResult) -> None:
        self.consumed.inc(result.outcomes_reached)
        if result.deferred:
            self.deferred.inc(result.deferred)
        for outcome, count in result.outcomes.items():
            self._verdicts[outcome].inc(count)
        for reason, count in result.dead_letters.items():
            self._dead_letters[reason].inc(count)
        for key, count in result.findings.items():
            self._finding_child(key).inc(count)
        observe_validation = self.validation_duration.observe
        observe_latency = self.end_to_end_latency.observe
        delivered_at_ms = result.delivered_at_s * 1000.0
        for record, evaluation, _ in result.processed:
            observe_validation(evaluation.duration_s)
            timestamp_ms = record.timestamp
            if timestamp_ms >= 0 and not isinstance(evaluation, Deferred):
                observe_latency(max(0.0, (delivered_at_ms - timestamp_ms) / 1000.0))
        self.batch_records.observe(result.records)
        self.batch_duration.observe(result.duration_s)
        if result.history_lookups:
            self.history_lookups.inc(result.history_lookups)

    def batch_retried(self, stage: Stage, error: KafkaIOError, partitions: tuple[int, ...]) -> None:
        self._retries[stage].inc()

    def commit_finished(self, error: KafkaIOError | None, partitions: tuple[int, ...]) -> None:
        (self.commits if error is None else self.commit_failures).inc()

    def transaction_finished(self, outcome: TransactionOutcome) -> None:
        self._transactions[outcome].inc()

    def polled(self, at_s: float) -> None:
        self.last_poll.set(at_s)

    def lag(self, partition: TopicPartition, records: int) -> None:
        child = self._lag.get(partition)
        if child is None:
            with self._lock:
                child = self._lag.setdefault(
                    partition, self.consumer_lag.labels(topic=partition.topic, partition=str(partition.partition))
                )
        child.set(records)

    def partitions_assigned(self, partitions: Collection[TopicPartition], assigned: Collection[TopicPartition]) -> None:
        self._rebalances["assigned"].inc()
        self._count_assigned({tp.topic for tp in partitions}, assigned)

    def partitions_revoked(
        self, partitions: Collection[TopicPartition], assigned: Collection[TopicPartition], *, lost: bool
    ) -> None:
        self._rebalances["lost" if lost else "revoked"].inc()
        self._count_assigned({tp.topic for tp in partitions}, assigned)
        with self._lock:
            for partition in partitions:
                if self._lag.pop(partition, None) is not None:
                    self.consumer_lag.remove(partition.topic, str(partition.partition))

    def ready(self, is_ready: bool) -> None:
        self.ready_gauge.set(1 if is_ready else 0)

    def history_restore_started(self, partition: int, records: int) -> None:
        with self._lock:
            self._restoring.add(partition)
            self.history_restoring.set(len(self._restoring))
        self.history_restore_remaining.labels(partition=str(partition)).set(records)

    def history_restored(self, partition: int, records: int) -> None:
        self.restored_records.labels(partition=str(partition)).inc(records)
        self.history_restore_remaining.labels(partition=str(partition)).dec(records)

    def history_restore_finished(self, partition: int, records: int, duration_s: float) -> None:
        with self._lock:
            self._restoring.discard(partition)
            self.history_restoring.set(len(self._restoring))
        self.history_restore_remaining.labels(partition=str(partition)).set(0)
        self.history_restore_duration.observe(duration_s)
        self.restored_records.labels(partition=str(partition))  # the partition's series exists from now on

    def history_store_entries(self, partition: int, entries: int) -> None:
        self.history_entries.labels(partition=str(partition)).set(entries)

    def history_store_rebuilt(self, partition: int) -> None:
        del partition
        self.history_rebuilds.inc()

    # --- helpers --------------------------------------------------------------------------------------------------

    def _count_assigned(self, topics: set[str], assigned: Collection[TopicPartition]) -> None:
        for topic in topics:
            self.assigned_partitions.labels(topic=topic).set(sum(1 for tp in assigned if tp.topic == topic))

    def _finding_child(self, key: tuple[str, str]) -> Counter:
        child = self._findings.get(key)
        if child is None:
            with self._lock:
                rule_id, severity = key
                if len(self._findings) >= MAX_RULE_LABELS:
                    rule_id = OTHER_RULE
                if severity not in _SEVERITIES:
                    severity = OTHER_RULE
                child = self._findings.setdefault(key, self.findings.labels(rule_id=rule_id, severity=severity))
        return child

    def __repr__(self) -> str:
        return f"<WorkerMetrics rule_labels={len(self._findings)} lag_partitions={len(self._lag)}>"


_SEVERITIES = frozenset(severity.value for severity in Severity)
