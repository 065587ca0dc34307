"""The consume-validate-produce loop: poll, evaluate, route, deliver, observe.

One unit of work is a polled batch. Every record becomes exactly one evaluation and every evaluation exactly one
output record (`worker.stages`: the rules, and claim history's cross-claim checks when on), and the sink
(`worker.sink`) makes the outputs durable and then commits the batch's offsets (`offset + 1`), once per batch:
at_least_once by `flush()` and a commit, exactly_once in one Kafka transaction. Only then is the batch observed
(metrics and its log line).

A failed delivery never commits past the failed record: the loop decides what to do (`worker.recovery`), has
the sink abort the transaction (and replace a broken producer), seeks the batch's partitions back to its first
offsets and processes it again, at once or after a bounded, jittered backoff. While the broker stays
unavailable the outage clock runs; past `max_outage_s` the loop ends with `ExitCode.BROKER_OUTAGE` so the
orchestrator restarts the process.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

import structlog

from worker.batch import Batch, BatchResult
from worker.exit_codes import ExitCode
from worker.history.stage import HistoryStoreFailed
from worker.kafka_io import ConsumerPort, KafkaIOError, TopicPartition
from worker.loop_options import LoopOptions
from worker.observer import ObserverChain
from worker.probes import HealthState
from worker.recovery import Backoff, Decision, Rewind, Stage, Stop, decide
from worker.retry import BackoffDelays, BrokerOutageError, OutageClock, OutageLog
from worker.shutdown import ShutdownSignal
from worker.sink import Delivery, DeliveryFailed, Sink
from worker.stages import BatchWork, Stages

_CLOSE_TIMEOUT_S = 10.0
# While a claim-history store is restored the loop polls briefly, so restore steps come often. Never 0: kafka-python
# 3.0 then never completes a rebalance (the member stops heart-beating and is evicted; found with a 200,000-entry
# restore during a metadata rebalance).
RESTORING_POLL_TIMEOUT_MS = 50


class LoopStopped(Exception):  # noqa: N818 - a control-flow signal carrying the exit code, not an error
    """Raised inside the loop to end it with `exit_code`."""

    def __init__(self, exit_code: ExitCode, reason: str) -> None:
        super().__init__(reason)
        self.exit_code = exit_code
        self.reason = reason


class ValidationLoop:
    """Poll, evaluate, route, deliver, observe; see the module docstring for the guarantees.

    The consumer must already be subscribed, its rebalance listener delivering to the same `sink`.
    """

    def __init__(
        self,
        *,
        consumer: ConsumerPort,
        sink: Sink,
        stages: Stages,
        options: LoopOptions,
        shutdown: ShutdownSignal,
        observer: ObserverChain | None = None,
        health: HealthState | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        backoff: BackoffDelays | None = None,
    ) -> None:
        self._consumer = consumer
        self._sink = sink
        self._stages = stages
        self._options = options
        self._shutdown = shutdown
        self._observer = ObserverChain() if observer is None else observer
        self._health = HealthState() if health is None else health
        self._clock = clock
        self._wall_clock = wall_clock
        self._backoff = backoff or BackoffDelays(
            initial_s=options.retry_backoff_initial_s, max_s=options.retry_backoff_max_s
        )
        self._outage = OutageClock(max_outage_s=options.max_outage_s, clock=clock)
        self._outage_log = OutageLog(clock=clock)
        self._log = structlog.get_logger()
        self._last_probe = float("-inf")
        self.batches = 0
        self.records = 0  # records processed, of both stages when claim history is on
        self.outcomes = 0  # claims brought to their outcome: verdicts and dead letters
        self.retries = 0

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
            self._stages.maintain()  # claim history: partitions assigned or revoked, restores
            timeout_ms = RESTORING_POLL_TIMEOUT_MS if self._stages.restoring else self._options.poll_timeout_ms
            polled = self._consumer.poll(timeout_ms, self._options.batch_max_records)
        except KafkaIOError as error:
            self._failed(error, Stage.POLL, started=self._clock())
            return
        if not polled:
            self._idle()
            return
        batch = Batch.of(polled, started=self._clock())
        self._observer.polled(self._wall_clock())
        work = self._begin(batch)
        if work is None:
            return
        try:
            delivery = self._sink.deliver(work.outputs, batch.next_offsets, self._wait_budget_s, work.changelog)
        except DeliveryFailed as failure:
            work.rewound()
            self._retry(batch, failure)
            return
        self._delivered(work, delivery)
        self._observe(
            BatchResult.of(
                work.processed,
                partitions=batch.partitions,
                duration_s=self._clock() - batch.started,
                delivered_at_s=self._wall_clock(),
                delivery=delivery,
                history_lookups=work.lookups,
            ),
            batch.next_offsets,
        )
        if delivery.commit_error is not None:
            self._failed(delivery.commit_error, Stage.COMMIT)

    def _begin(self, batch: Batch) -> BatchWork | None:
        """The batch's work (evaluate -> route, lazily, while the sink sends); None when a claim-history store could
        not be read: the batch is then polled again once the store is rebuilt."""
        try:
            return self._stages.begin(batch.records)
        except HistoryStoreFailed as failed:
            for tp, offset in batch.first_offsets.items():
                self._consumer.seek(tp, offset)
            self._rebuild(failed)
            return None

    def _delivered(self, work: BatchWork, delivery: Delivery) -> None:
        """The batch is durable: claim history writes its stores; one that cannot be written misses nothing the
        changelog does not hold, so it is rebuilt from it."""
        try:
            work.delivered(delivery)
        except HistoryStoreFailed as failed:
            self._rebuild(failed)

    def _rebuild(self, failed: HistoryStoreFailed) -> None:
        try:
            self._stages.rebuild(failed)
        except KafkaIOError as error:
            self._failed(error, Stage.POLL, started=self._clock())

    def _observe(self, result: BatchResult, next_offsets: Mapping[TopicPartition, int]) -> None:
        delivery = result.delivery
        if delivery.committed:
            self._broker_answered()
        self.batches += 1
        self.records += result.records
        self.outcomes += result.outcomes_reached
        if delivery.transaction is not None:
            self._observer.transaction_finished(delivery.transaction)
        self._observer.commit_finished(delivery.commit_error, result.partitions)
        self._observer.batch_delivered(result)
        self._report_lag({tp: self._consumer.highwater(tp) for tp in next_offsets}, next_offsets)

    # --- failures -------------------------------------------------------------------------------------------------

    def _retry(self, batch: Batch, failure: DeliveryFailed) -> None:
        """Nothing of the batch is committed: decide, let the sink recover, seek back, back off (or stop)."""
        self.retries += 1
        self._observer.batch_retried(failure.stage, failure.error, batch.partitions)
        decision = decide(failure.error, failure.stage)
        if not isinstance(decision, Stop):
            fresh_producer = isinstance(decision, Rewind) and decision.fresh_producer
            try:
                outcome = self._sink.recover(failure.error, fresh_producer=fresh_producer, budget=self._wait_budget_s)
            except KafkaIOError as error:  # no working producer can be had
                decision = decide(error, failure.stage)
            else:
                if outcome is not None:
                    self._observer.transaction_finished(outcome)
                for tp, offset in batch.first_offsets.items():
                    self._consumer.seek(tp, offset)
        self._failed(failure.error, failure.stage, started=batch.started, decision=decision)

    def _failed(
        self, error: KafkaIOError, stage: Stage, *, started: float | None = None, decision: Decision | None = None
    ) -> None:
        """Carry out `decision` (by default: what `decide` says about `error` at `stage`)."""
        match decide(error, stage) if decision is None else decision:
            case Stop(exit_code=exit_code, reason=reason):
                raise LoopStopped(exit_code, reason)
            case Backoff():
                self._set_ready(False)
                try:
                    self._outage.failed(f"{stage}: {error}", started=started)
                except BrokerOutageError as outage:
                    raise LoopStopped(ExitCode.BROKER_OUTAGE, str(outage)) from None
                self._outage_log.failed(str(error), outage_s=self._outage.outage_s, stage=stage.value)
                delay = self._backoff.next_delay_s()
                remaining = self._shutdown.remaining_s()
                self._shutdown.wait(delay if remaining is None else min(delay, remaining))
            case Rewind():
                pass  # what has no durable output yet is polled again, now

    # --- idle time: pending commits, broker probe and lag ---------------------------------------------------------

    def _idle(self) -> None:
        now = self._clock()
        interval = self._options.probe_interval_s if not self._outage.in_outage else 0.0
        if now - self._last_probe < interval:
            return
        self._last_probe = now
        commit_error = self._sink.commit_pending(self._wait_budget_s)
        if commit_error is not None:
            self._observer.commit_finished(commit_error, ())
            self._failed(commit_error, Stage.COMMIT, started=now)
            return
        assigned = sorted(self._consumer.assignment())
        probe = assigned or [TopicPartition(self._options.input_topic, 0)]
        try:
            ends = self._consumer.end_offsets(probe, self._wait_budget_s(self._options.probe_timeout_s))
        except KafkaIOError as error:
            self._failed(error, Stage.PROBE, started=now)
            return
        self._broker_answered()
        self._observer.polled(self._wall_clock())
        self._report_lag({tp: ends.get(tp) for tp in assigned}, {tp: self._position(tp) for tp in assigned})

    def _position(self, partition: TopicPartition) -> int | None:
        try:
            return self._consumer.position(partition, self._options.probe_timeout_s)
        except KafkaIOError:
            return None

    def _report_lag(
        self, ends: Mapping[TopicPartition, int | None], positions: Mapping[TopicPartition, int | None]
    ) -> None:
        for tp, end in ends.items():
            position = positions.get(tp)
            if end is not None and position is not None:
                self._observer.lag(tp, max(0, end - position))

    # --- helpers --------------------------------------------------------------------------------------------------

    def _broker_answered(self) -> None:
        self._outage_log.recovered(outage_s=self._outage.outage_s)
        self._outage.succeeded()
        self._backoff.reset()
        self._set_ready(True)

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
        self._sink.close(timeout, commit=exit_code is ExitCode.OK)
        try:
            self._consumer.close(timeout)
        except KafkaIOError as error:
            self._log.warning("kafka.close_failed", client="consumer", error=str(error))
        remaining = self._shutdown.remaining_s()
        if exit_code is ExitCode.OK and remaining is not None and remaining <= 0:
            return ExitCode.FORCED_EXIT
        return exit_code

    def __repr__(self) -> str:
        return (
            f"<ValidationLoop sink={self._sink!r} batches={self.batches} records={self.records} "
            f"retries={self.retries} outage_s={self._outage.outage_s:.1f}>"
        )
