"""The consume-validate-produce loop and its delivery guarantees.

One unit of work is a polled batch: every record becomes exactly one output (a verdict on the pass or fail
topic, or the original record on the dead-letter topic), the outputs are produced, and only when the broker has
acknowledged all of them is `offset + 1` committed, once per batch:

- `at_least_once`: `flush()` (one wait for all acks), then a synchronous offset commit.
- `exactly_once`: the outputs and the offsets go into one Kafka transaction
  (`send_offsets_to_transaction(offsets, consumer.group_metadata())`, then `commit_transaction()`).

A failure while producing (or committing the transaction) never commits past the failed record: the transaction
is aborted, the batch's partitions are sought back to the batch's first offsets (= the committed offsets) and
the batch is polled and processed again after a bounded, jittered backoff. While the broker stays unavailable
the outage clock runs; past `max_outage_s` the loop ends with `ExitCode.BROKER_OUTAGE` so the orchestrator
restarts the process. Non-retriable producer errors get one fresh producer; a second in a row ends the loop.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import structlog

from rules.engine import RuleEngine
from rules.pipeline import evaluate_record
from schemas.parsing import DEFAULT_MAX_BYTES, DeadLetter
from schemas.verdict import Outcome
from worker.evaluator import Evaluate, Evaluated, EvaluatorError, ProcessEvaluator, RecordItem, evaluate_value
from worker.exit_codes import ExitCode
from worker.kafka_io import (
    BrokerUnavailableError,
    CommitRejectedError,
    ConsumerPort,
    Headers,
    KafkaConfigError,
    KafkaIOError,
    ProducerFencedError,
    ProducerPort,
    Record,
    TopicPartition,
)
from worker.observer import BatchStats, LoopObserver, NullObserver, SafeObserver
from worker.probes import HealthState
from worker.rebalance import PendingOffsets
from worker.retry import Backoff, BrokerOutageError, OutageClock
from worker.settings import DeliveryMode, WorkerSettings
from worker.shutdown import ShutdownSignal

# Dead-letter headers (the original key, value and headers are kept unchanged; these are appended).
DLQ_REASON = "dlq.reason"
DLQ_ERROR = "dlq.error"
DLQ_SOURCE_TOPIC = "dlq.source.topic"
DLQ_SOURCE_PARTITION = "dlq.source.partition"
DLQ_SOURCE_OFFSET = "dlq.source.offset"
DLQ_WORKER_ID = "dlq.worker_id"
# What a dead letter left out of its copy of the original record, e.g. `value=10485500` (see `_bounded_copy`).
DLQ_OMITTED = "dlq.omitted"
# Room kept for the dlq.* headers and Kafka's record overhead when copying a record of the worker's size limit.
DLQ_HEADROOM_BYTES = 8 * 1024

_DLQ_ERROR_MAX_CHARS = 200
_CLOSE_TIMEOUT_S = 10.0


@dataclass(frozen=True, slots=True)
class LoopOptions:
    """What the loop needs from the settings; durations in seconds unless the name says otherwise."""

    input_topic: str
    pass_topic: str
    fail_topic: str
    dlq_topic: str
    worker_id: str
    exactly_once: bool = False
    batch_max_records: int = 1000
    poll_timeout_ms: int = 250
    max_record_bytes: int = DEFAULT_MAX_BYTES
    max_outage_s: float = 60.0
    retry_backoff_initial_s: float = 0.2
    retry_backoff_max_s: float = 5.0
    commit_timeout_s: float = 30.0
    probe_interval_s: float = 5.0
    probe_timeout_s: float = 5.0

    @classmethod
    def from_settings(cls, settings: WorkerSettings) -> LoopOptions:
        return cls(
            input_topic=settings.input_topic,
            pass_topic=settings.pass_topic,
            fail_topic=settings.fail_topic,
            dlq_topic=settings.dlq_topic,
            worker_id=settings.worker_id,
            exactly_once=settings.delivery is DeliveryMode.EXACTLY_ONCE,
            batch_max_records=settings.batch_max_records,
            poll_timeout_ms=settings.poll_timeout_ms,
            max_record_bytes=settings.max_record_bytes,
            max_outage_s=settings.max_outage_s,
            retry_backoff_initial_s=settings.retry_backoff_initial_s,
            retry_backoff_max_s=settings.retry_backoff_max_s,
            commit_timeout_s=settings.request_timeout_ms / 1000,
            probe_timeout_s=min(5.0, settings.request_timeout_ms / 1000),
        )


class LoopStopped(Exception):  # noqa: N818 - a control-flow signal carrying the exit code, not an error
    """Raised inside the loop to end it with `exit_code`."""

    def __init__(self, exit_code: ExitCode, reason: str) -> None:
        super().__init__(reason)
        self.exit_code = exit_code
        self.reason = reason


class ValidationLoop:
    """Poll, validate, produce, acknowledge, commit; see the module docstring for the guarantees.

    The consumer must already be subscribed (its rebalance listener sharing `pending`). `producer_factory`
    builds a replacement producer after a non-retriable producer error (None: such an error ends the loop).
    `evaluator` runs the rules in child processes (see `worker.evaluator`); None runs them in this thread.
    """

    def __init__(
        self,
        *,
        consumer: ConsumerPort,
        producer: ProducerPort,
        engine: RuleEngine,
        options: LoopOptions,
        shutdown: ShutdownSignal,
        producer_factory: Callable[[], ProducerPort] | None = None,
        observer: LoopObserver | None = None,
        health: HealthState | None = None,
        pending: PendingOffsets | None = None,
        evaluate: Evaluate = evaluate_record,
        evaluator: ProcessEvaluator | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        backoff: Backoff | None = None,
    ) -> None:
        if producer.transactional != options.exactly_once:
            raise ValueError("the producer must be transactional exactly when the loop runs exactly_once")
        self._consumer = consumer
        self._producer: ProducerPort | None = producer
        self._producer_factory = producer_factory
        self._engine = engine
        self._options = options
        self._shutdown = shutdown
        self._observer: LoopObserver = SafeObserver(NullObserver() if observer is None else observer)
        self._health = HealthState() if health is None else health
        self._pending = PendingOffsets() if pending is None else pending
        self._evaluate = evaluate
        self._evaluator = evaluator
        self._clock = clock
        self._wall_clock = wall_clock
        self._backoff = (
            backoff
            if backoff is not None
            else Backoff(initial_s=options.retry_backoff_initial_s, max_s=options.retry_backoff_max_s)
        )
        self._outage = OutageClock(max_outage_s=options.max_outage_s, clock=clock)
        self._log = structlog.get_logger().bind()
        self._debug = bool(self._log.is_enabled_for(logging.DEBUG))
        self._next_offsets: dict[TopicPartition, int] = {}
        self._last_probe = float("-inf")
        self._fatal_producer_errors = 0
        self._worker_id_header = options.worker_id.encode()
        self.batches = 0
        self.records = 0
        self.retries = 0

    # --- the loop ---------------------------------------------------------------------------------------------

    def run(self) -> ExitCode:
        """Run until a stop is requested (0), the broker outage bound passes (4) or a fatal error happens."""
        self._set_ready(True)
        exit_code = ExitCode.OK
        try:
            while not self._shutdown.requested:
                self.run_once()
        except LoopStopped as stop:
            exit_code = stop.exit_code
            self._log.error("worker.stopping", reason=stop.reason, exit_code=int(stop.exit_code))
        finally:
            self._set_ready(False)
            exit_code = self._close(exit_code)
        return exit_code

    def run_once(self) -> None:
        """One poll and, if records came, one batch. Raises `LoopStopped` to end the loop."""
        self._health.tick()
        try:
            batch = self._consumer.poll(self._options.poll_timeout_ms, self._options.batch_max_records)
        except KafkaIOError as error:
            self._on_failure(error, stage="poll", started=self._clock())
            return
        if not batch:
            self._idle()
            return
        self._observer.polled(self._wall_clock())
        self._process(batch)

    # --- one batch --------------------------------------------------------------------------------------------

    def _process(self, batch: Mapping[TopicPartition, Sequence[Record]]) -> None:
        started = self._clock()
        exactly_once = self._options.exactly_once
        first_offsets = {tp: records[0].offset for tp, records in batch.items() if records}
        next_offsets = {tp: records[-1].offset + 1 for tp, records in batch.items() if records}
        stats = BatchStats(partitions=tuple(sorted(tp.partition for tp in next_offsets)))
        try:
            producer = self._ensure_producer()
            if exactly_once:
                producer.begin_transaction()
            self._produce_outputs(producer, batch, stats)
            if exactly_once:
                producer.commit_transaction(
                    next_offsets, self._consumer.group_metadata(), self._wait_budget_s(self._options.max_outage_s)
                )
            else:
                producer.flush(self._wait_budget_s(self._options.max_outage_s))
        except KafkaIOError as error:
            self._abort_and_rewind(first_offsets, error, started)
            return

        if exactly_once:
            self._observer.transaction_finished("committed")
            self._observer.commit_succeeded()
            committed = True
        else:
            committed = self._commit(next_offsets, started)
        self._fatal_producer_errors = 0
        if committed:
            self._outage.succeeded()
            self._backoff.reset()
            self._set_ready(True)
        self._next_offsets.update(next_offsets)

        stats.duration_s = self._clock() - started
        stats.committed_at_s = self._wall_clock()
        self.batches += 1
        self.records += stats.records
        self._observer.batch_committed(stats)
        self._report_lag(next_offsets)
        self._log.info(
            "batch.processed",
            records=stats.records,
            passed=stats.outcomes[Outcome.PASS],
            failed=stats.outcomes[Outcome.FAIL],
            not_applicable=stats.outcomes[Outcome.NOT_APPLICABLE],
            dead_letters=sum(stats.dead_letters.values()),
            duration_ms=round(stats.duration_s * 1000, 1),
            partitions=list(stats.partitions),
        )

    def _produce_outputs(
        self, producer: ProducerPort, batch: Mapping[TopicPartition, Sequence[Record]], stats: BatchStats
    ) -> None:
        # The hot path: no logging at info, no metric calls, locals bound once.
        send = producer.send
        pass_topic = self._options.pass_topic
        fail_topic = self._options.fail_topic
        outcomes = stats.outcomes
        findings = stats.findings
        durations = stats.validation_durations_s
        timestamps = stats.record_timestamps_ms
        fail = Outcome.FAIL
        debug = self._debug
        count = 0
        for record, evaluated in self._evaluated(batch):
            count += 1
            durations.append(evaluated.duration_s)
            timestamps.append(record.timestamp)
            outcome = evaluated.outcome
            letter = evaluated.dead_letter
            if outcome is None or letter is not None:
                if letter is not None:
                    stats.dead_letters[letter.reason] += 1
                    self._dead_letter(producer, record, letter)
                continue
            outcomes[outcome] += 1
            for key in evaluated.findings:
                findings[key] += 1
            if outcome is fail:
                send(fail_topic, key=evaluated.claim_id.encode(), value=evaluated.value, headers=None)
                if debug:
                    self._log.debug(
                        "claim.failed",
                        claim_id=evaluated.claim_id,
                        rule_ids=[rule_id for rule_id, _ in evaluated.findings],
                        topic=record.topic,
                        partition=record.partition,
                        offset=record.offset,
                    )
            else:
                send(pass_topic, key=evaluated.claim_id.encode(), value=evaluated.value, headers=None)
        stats.records = count

    def _evaluated(self, batch: Mapping[TopicPartition, Sequence[Record]]) -> Iterator[tuple[Record, Evaluated]]:
        """Each record of the batch with its result, in order: from the evaluator processes or in this thread."""
        validated_at = dt.datetime.now(dt.UTC)
        max_bytes = self._options.max_record_bytes
        evaluate = self._evaluate
        engine = self._engine
        evaluator = self._evaluator
        if evaluator is None or sum(len(records) for records in batch.values()) < evaluator.min_batch_records:
            for tp, records in batch.items():
                topic = tp.topic
                partition = tp.partition
                for record in records:
                    value = record.value
                    item = (value if value is not None else b"", topic, partition, record.offset)
                    yield record, evaluate_value(evaluate, engine, item, validated_at, max_bytes)
            return
        records = [record for records in batch.values() for record in records]
        items: list[RecordItem] = [
            (record.value if record.value is not None else b"", tp.topic, tp.partition, record.offset)
            for tp, records_of in batch.items()
            for record in records_of
        ]
        done = 0
        try:
            for chunk in evaluator.evaluate(items, validated_at=validated_at, max_bytes=max_bytes):
                for evaluated in chunk:
                    yield records[done], evaluated
                    done += 1
        except EvaluatorError as error:
            # Nothing of this batch is committed yet: evaluate the rest here, and from now on always here.
            self._log.error("evaluator.failed", error=str(error), evaluated_records=done)
            self._evaluator = None
            evaluator.close(timeout_s=1.0)
            for index in range(done, len(items)):
                yield records[index], evaluate_value(evaluate, engine, items[index], validated_at, max_bytes)

    def _dead_letter(self, producer: ProducerPort, record: Record, letter: DeadLetter) -> None:
        error = letter.error[:_DLQ_ERROR_MAX_CHARS]
        key, value, original_headers, omitted = _bounded_copy(record, self._options.max_record_bytes)
        headers: Headers = [
            *original_headers,
            (DLQ_REASON, letter.reason.value.encode()),
            (DLQ_ERROR, error.encode()),
            (DLQ_SOURCE_TOPIC, record.topic.encode()),
            (DLQ_SOURCE_PARTITION, str(record.partition).encode()),
            (DLQ_SOURCE_OFFSET, str(record.offset).encode()),
            (DLQ_WORKER_ID, self._worker_id_header),
        ]
        if omitted:
            headers.append((DLQ_OMITTED, omitted.encode()))
        if value is None and key is None:
            value = b""  # a record needs a key or a value; an empty one stands for "no value"
        producer.send(self._options.dlq_topic, key=key, value=value, headers=headers)
        self._log.warning(
            "claim.dead_lettered",
            reason=letter.reason.value,
            error=error,
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            claim_id=_key_text(record.key),
            omitted=omitted or None,
        )

    # --- committing -------------------------------------------------------------------------------------------

    def _commit(self, next_offsets: Mapping[TopicPartition, int], started: float) -> bool:
        """at_least_once: the outputs are acknowledged; commit their offsets (plus any still pending).

        Returns False when the commit failed; the offsets then stay pending for the next commit.
        """
        self._pending.add(next_offsets)
        offsets = self._pending.snapshot()
        try:
            self._consumer.commit(offsets, self._wait_budget_s(self._options.commit_timeout_s))
        except CommitRejectedError as error:
            # The group moved on; the outputs are published. The revocation hook commits what it still can;
            # otherwise the partition's new owner repeats these records (at-least-once).
            self._observer.commit_failed()
            self._log.warning("kafka.commit_failed", stage="commit", error=str(error), partitions=_numbers(offsets))
            return False
        except BrokerUnavailableError as error:
            # The outputs are published; the offsets stay pending and go with the next commit.
            self._observer.commit_failed()
            self._log.warning("kafka.commit_failed", stage="commit", error=str(error), partitions=_numbers(offsets))
            self._on_failure(error, stage="commit", started=started)
            return False
        except KafkaIOError as error:
            self._observer.commit_failed()
            raise self._fatal(error, stage="commit") from None
        self._pending.committed(offsets)
        self._observer.commit_succeeded()
        return True

    # --- failures ---------------------------------------------------------------------------------------------

    def _abort_and_rewind(
        self, first_offsets: Mapping[TopicPartition, int], error: KafkaIOError, started: float
    ) -> None:
        """Nothing of this batch is committed: abort its transaction, seek back, back off (or stop)."""
        self.retries += 1
        stage = "transaction" if self._options.exactly_once else "produce"
        self._observer.batch_retried(stage)
        self._log.warning(
            "batch.failed", stage=stage, error=str(error), partitions=_numbers(first_offsets), retriable=error.retriable
        )
        if isinstance(error, (KafkaConfigError, ProducerFencedError)):
            raise self._fatal(error, stage=stage)
        if self._options.exactly_once and self._producer is not None:
            try:
                self._producer.abort_transaction(self._wait_budget_s(self._options.commit_timeout_s))
                self._observer.transaction_finished("aborted")
            except KafkaIOError as abort_error:
                # The producer is in an unknown state: a new one (whose init_transactions() fences this one and
                # aborts its transaction) is created before the next batch.
                self._log.warning("kafka.abort_failed", error=str(abort_error))
                self._observer.transaction_finished("abort_failed")
                self._discard_producer(abort_error)
        if not error.retriable and not isinstance(error, CommitRejectedError):
            # e.g. a record over the size limit or a producer in a fatal state: one fresh producer gets one more
            # try; a second such failure in a row ends the loop.
            self._fatal_producer_errors += 1
            if self._fatal_producer_errors > 1:
                raise self._fatal(error, stage=stage)
            self._discard_producer(error)
        for tp, offset in first_offsets.items():
            self._consumer.seek(tp, offset)
        self._on_failure(error, stage=stage, started=started)

    def _on_failure(self, error: KafkaIOError, *, stage: str, started: float) -> None:
        if isinstance(error, BrokerUnavailableError):
            self._set_ready(False)
            try:
                self._outage.failed(f"{stage}: {error}", started=started)
            except BrokerOutageError as outage:
                raise LoopStopped(ExitCode.BROKER_OUTAGE, str(outage)) from None
            self._sleep_backoff()
            return
        if isinstance(error, CommitRejectedError) or stage in ("produce", "transaction"):
            return  # already rewound; the batch is polled again
        raise self._fatal(error, stage=stage)

    def _discard_producer(self, error: KafkaIOError) -> None:
        if self._producer_factory is None:
            raise self._fatal(error, stage="producer")
        if self._producer is not None:
            with contextlib.suppress(KafkaIOError):  # it is being replaced because it is broken
                self._producer.close(0.0)
            self._producer = None
            self._log.warning("kafka.producer_discarded", reason=str(error))

    def _ensure_producer(self) -> ProducerPort:
        if self._producer is None:
            if self._producer_factory is None:
                raise KafkaIOError("no producer")
            self._producer = self._producer_factory()
            self._log.info("kafka.producer_created")
        return self._producer

    def _fatal(self, error: KafkaIOError, *, stage: str) -> LoopStopped:
        if isinstance(error, KafkaConfigError):
            return LoopStopped(ExitCode.CONFIG, f"{stage}: the broker rejected the configuration: {error}")
        if isinstance(error, ProducerFencedError):
            return LoopStopped(
                ExitCode.FAILURE,
                f"{stage}: another producer uses transactional id of this worker "
                f"(is CLAIMS_WORKER_ID unique per replica?): {error}",
            )
        return LoopStopped(ExitCode.FAILURE, f"{stage}: {error}")

    def _sleep_backoff(self) -> None:
        delay = self._backoff.next_delay_s()
        remaining = self._shutdown.remaining_s()
        if remaining is not None:
            delay = min(delay, remaining)
        self._shutdown.wait(delay)

    # --- idle time: health probe and lag ----------------------------------------------------------------------

    def _idle(self) -> None:
        now = self._clock()
        interval = self._options.probe_interval_s if not self._outage.in_outage else 0.0
        if now - self._last_probe < interval:
            return
        self._last_probe = now
        if len(self._pending) and not self._options.exactly_once and not self._commit({}, now):
            return
        assigned = sorted(self._consumer.assignment())
        probe = assigned or [TopicPartition(self._options.input_topic, 0)]
        try:
            ends = self._consumer.end_offsets(probe, self._wait_budget_s(self._options.probe_timeout_s))
        except KafkaIOError as error:
            outage_s = self._outage.outage_s if self._outage.in_outage else self._clock() - now
            self._log.warning("kafka.unavailable", error=str(error), outage_s=round(outage_s, 1))
            self._on_failure(error, stage="probe", started=now)
            return
        if self._outage.in_outage:
            self._log.info("kafka.available", outage_s=round(self._outage.outage_s, 1))
        self._outage.succeeded()
        self._backoff.reset()
        self._set_ready(True)
        self._observer.polled(self._wall_clock())
        for tp in assigned:
            position = self._next_offsets.get(tp)
            if position is None:
                try:
                    position = self._consumer.position(tp, self._options.probe_timeout_s)
                except KafkaIOError:
                    position = None
            end = ends.get(tp)
            if position is not None and end is not None:
                self._observer.lag(tp, max(0, end - position))

    def _report_lag(self, next_offsets: Mapping[TopicPartition, int]) -> None:
        for tp, position in next_offsets.items():
            highwater = self._consumer.highwater(tp)
            if highwater is not None:
                self._observer.lag(tp, max(0, highwater - position))

    # --- helpers ----------------------------------------------------------------------------------------------

    def _wait_budget_s(self, limit_s: float) -> float:
        """How long a blocking call may wait: `limit_s`, the outage budget and the shutdown grace, whichever is less."""
        budget = min(limit_s, max(self._outage.remaining_s(), 0.5))
        remaining = self._shutdown.remaining_s()
        return budget if remaining is None else min(budget, remaining)

    def _set_ready(self, ready: bool) -> None:
        if self._health.set_ready(ready):
            self._observer.ready(ready)

    def _close(self, exit_code: ExitCode) -> ExitCode:
        timeout = self._shutdown.remaining_s()
        if timeout is None:
            timeout = _CLOSE_TIMEOUT_S if exit_code is ExitCode.OK else 2.0
        if len(self._pending) and not self._options.exactly_once and exit_code is ExitCode.OK:
            try:
                offsets = self._pending.snapshot()
                self._consumer.commit(offsets, timeout)
                self._pending.committed(offsets)
            except KafkaIOError as error:
                self._log.warning("kafka.commit_failed", stage="close", error=str(error))
        clients: list[tuple[str, Callable[[float], None]]] = [("consumer", self._consumer.close)]
        if self._producer is not None:
            clients.append(("producer", self._producer.close))
        for name, close in clients:
            try:
                close(timeout)
            except KafkaIOError as error:
                self._log.warning("kafka.close_failed", client=name, error=str(error))
        remaining = self._shutdown.remaining_s()
        if exit_code is ExitCode.OK and remaining is not None and remaining <= 0:
            return ExitCode.FORCED_EXIT
        return exit_code

    def __repr__(self) -> str:
        return (
            f"<ValidationLoop exactly_once={self._options.exactly_once} batches={self.batches} records={self.records} "
            f"retries={self.retries} pending={len(self._pending)} outage_s={self._outage.outage_s:.1f}>"
        )


def _numbers(partitions: Mapping[TopicPartition, Any] | Sequence[TopicPartition]) -> list[int]:
    return sorted({tp.partition for tp in partitions})


def _key_text(key: bytes | None) -> str | None:
    if key is None:
        return None
    return key[:64].decode("utf-8", errors="replace")


def _bounded_copy(record: Record, max_record_bytes: int) -> tuple[bytes | None, bytes | None, Headers, str]:
    """The key, value and headers a dead letter copies, and what it left out ("" when nothing).

    A record the broker accepted on the input topic can be too big to write again with dead-letter headers (a
    `too_large` value just under the broker's limit, or any value within a few hundred bytes of it). Such a copy
    would fail its batch on every retry: the worker would exit, restart, and fail on the same record for ever.
    So a copy is at most `max_record_bytes` minus some headroom: the value is left out first, then the original
    headers, then the key; the original stays in the input topic, at the coordinates of the dlq.source.* headers.
    """
    budget = max_record_bytes - min(DLQ_HEADROOM_BYTES, max_record_bytes // 16)
    key, value = record.key, record.value
    headers: Headers = [*record.headers] if record.headers else []

    def size() -> int:
        return len(key or b"") + len(value or b"") + sum(len(name) + len(data or b"") for name, data in headers)

    omitted: list[str] = []
    if size() > budget and value:
        omitted.append(f"value={len(value)}")
        value = b""
    if size() > budget and headers:
        omitted.append(f"headers={len(headers)}")
        headers = []
    if size() > budget and key:
        omitted.append(f"key={len(key)}")
        key = None
    return key, value, headers, ",".join(omitted)


__all__ = [
    "DLQ_ERROR",
    "DLQ_OMITTED",
    "DLQ_REASON",
    "DLQ_SOURCE_OFFSET",
    "DLQ_SOURCE_PARTITION",
    "DLQ_SOURCE_TOPIC",
    "DLQ_WORKER_ID",
    "LoopOptions",
    "LoopStopped",
    "ValidationLoop",
]
