"""The log lines of the loop's work, as an observer: one line per batch, plus one per dead letter.

- `batch.processed` (info): records, outcomes, dead letters, claims deferred to claim history, duration and
  partitions of a delivered batch.
- `claim.dead_lettered` (warning): reason, error and Kafka coordinates of each dead letter, after it is durable.
- `claim.failed` (debug only): claim id, rule ids and coordinates of each failing claim.
- `batch.failed` (warning) and `kafka.commit_failed` (warning): a delivery or an offset commit that failed, but
  for the broker being unavailable: an outage has its own few lines (`worker.retry.OutageLog`).

Lines carry claim ids, codes, rule ids and Kafka coordinates, never claim contents (patient data).
"""

from __future__ import annotations

import logging

import structlog

from schemas.verdict import Outcome
from worker.batch import BatchResult
from worker.evaluator import Verdict
from worker.kafka_io import BrokerUnavailableError, KafkaIOError
from worker.observer import Observer
from worker.recovery import Stage
from worker.routing import DLQ_ERROR_MAX_CHARS, DLQ_OMITTED

_KEY_MAX_CHARS = 64


class BatchLog(Observer):
    """Writes the loop's log lines (see the module docstring)."""

    def __init__(self) -> None:
        self._log = structlog.get_logger()
        self._debug = bool(self._log.is_enabled_for(logging.DEBUG))

    def batch_delivered(self, result: BatchResult) -> None:
        for record, letter, output in result.dead_lettered():
            omitted = next((value.decode() for name, value in output.headers or () if name == DLQ_OMITTED), None)
            self._log.warning(
                "claim.dead_lettered",
                reason=letter.reason.value,
                error=letter.error[:DLQ_ERROR_MAX_CHARS],
                topic=record.topic,
                partition=record.partition,
                offset=record.offset,
                claim_id=_key_text(record.key),
                omitted=omitted,
            )
        if self._debug:
            for record, evaluation, _ in result.processed:
                if isinstance(evaluation, Verdict) and evaluation.outcome is Outcome.FAIL:
                    self._log.debug(
                        "claim.failed",
                        claim_id=evaluation.claim_id,
                        rule_ids=[rule_id for rule_id, _ in evaluation.findings],
                        topic=record.topic,
                        partition=record.partition,
                        offset=record.offset,
                    )
        self._log.info(
            "batch.processed",
            records=result.records,
            passed=result.outcomes[Outcome.PASS],
            failed=result.outcomes[Outcome.FAIL],
            not_applicable=result.outcomes[Outcome.NOT_APPLICABLE],
            dead_letters=sum(result.dead_letters.values()),
            deferred=result.deferred,
            duration_ms=round(result.duration_s * 1000, 1),
            partitions=list(result.partitions),
        )

    def batch_retried(self, stage: Stage, error: KafkaIOError, partitions: tuple[int, ...]) -> None:
        if isinstance(error, BrokerUnavailableError):
            return  # the outage lines (worker.retry.OutageLog) tell of it, not one line per retry
        self._log.warning(
            "batch.failed", stage=stage.value, error=str(error), partitions=list(partitions), retriable=error.retriable
        )

    def commit_finished(self, error: KafkaIOError | None, partitions: tuple[int, ...]) -> None:
        if error is not None and not isinstance(error, BrokerUnavailableError):
            self._log.warning(
                "kafka.commit_failed", stage=Stage.COMMIT.value, error=str(error), partitions=list(partitions)
            )

    def __repr__(self) -> str:
        return f"<BatchLog debug={self._debug}>"


def _key_text(key: bytes | None) -> str | None:
    if key is None:
        return None
    return key[:_KEY_MAX_CHARS].decode("utf-8", errors="replace")
