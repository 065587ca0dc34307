"""What the loop does about a failed Kafka operation: one decision, from the error's class and the stage.

The adapter (`worker.kafka_io`) has already classified every client exception into a few classes; this module
maps (class, stage) to one of three decisions, and the loop carries it out:

- `Rewind`: go on at once; whatever has no durable output yet is polled and processed again (after a failed
  delivery that is the whole batch: the loop seeks back to its first offsets). `fresh_producer` asks the sink to
  replace its producer first (a non-retriable producer error, e.g. a record over the size limit).
- `Backoff`: the broker is unavailable. The same as `Rewind`, after the outage clock has counted the failure (past
  `CLAIMS_MAX_OUTAGE_S` the loop stops with exit code 4 instead) and a jittered backoff.
- `Stop(exit_code, reason)`: retrying cannot help; the loop ends with that exit code (see `worker.exit_codes`).

| error \\ stage           | poll, commit, probe | produce, transaction |
|-------------------------|---------------------|----------------------|
| BrokerUnavailableError  | Backoff             | Backoff              |
| CommitRejectedError     | Rewind              | Rewind               |
| KafkaConfigError        | Stop(3)             | Stop(3)              |
| ProducerFencedError     | Stop(1)             | Stop(1)              |
| ProducerUnrecoverable   | Stop(1)             | Stop(1)              |
| any other KafkaIOError  | Stop(1)             | Rewind(fresh producer)|
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from worker.exit_codes import ExitCode
from worker.kafka_io import (
    BrokerUnavailableError,
    CommitRejectedError,
    KafkaConfigError,
    KafkaIOError,
    ProducerFencedError,
)


class Stage(StrEnum):
    """Where in the loop a Kafka operation failed (also the `stage` label of `claims_batch_retries_total`)."""

    POLL = "poll"
    PRODUCE = "produce"  # at_least_once: sending a batch's outputs and waiting for their acknowledgements
    TRANSACTION = "transaction"  # exactly_once: the batch's transaction (outputs and offsets)
    COMMIT = "commit"  # at_least_once: the offset commit after the outputs were acknowledged
    PROBE = "probe"  # the idle-time broker probe (end offsets)

    @property
    def delivers(self) -> bool:
        """Whether this stage writes a batch's outputs (a failure there leaves the whole batch to do again)."""
        return self in (Stage.PRODUCE, Stage.TRANSACTION)


class ProducerUnrecoverableError(KafkaIOError):
    """The sink cannot get a working producer: no factory to replace it, or a replacement failed the same way."""


@dataclass(frozen=True, slots=True)
class Rewind:
    fresh_producer: bool = False


@dataclass(frozen=True, slots=True)
class Backoff:
    pass


@dataclass(frozen=True, slots=True)
class Stop:
    exit_code: ExitCode
    reason: str


Decision = Rewind | Backoff | Stop


def decide(error: KafkaIOError, stage: Stage) -> Decision:
    """The loop's response to `error` at `stage` (the table in the module docstring)."""
    match error:
        case KafkaConfigError():
            return Stop(ExitCode.CONFIG, f"{stage}: the broker rejected the configuration: {error}")
        case ProducerFencedError():
            return Stop(
                ExitCode.FAILURE,
                f"{stage}: another producer uses the transactional id of this worker "
                f"(is CLAIMS_WORKER_ID unique per replica?): {error}",
            )
        case BrokerUnavailableError():
            return Backoff()
        case CommitRejectedError():
            # The group moved on (a rebalance): nothing to wait for. Offsets whose outputs are durable stay
            # pending for the next commit or the revocation hook; a failed transaction is polled again.
            return Rewind()
        case ProducerUnrecoverableError():
            return Stop(ExitCode.FAILURE, f"{stage}: {error}")
        case _ if stage.delivers:
            return Rewind(fresh_producer=True)
        case _:
            return Stop(ExitCode.FAILURE, f"{stage}: {error}")


__all__ = ["Backoff", "Decision", "ProducerUnrecoverableError", "Rewind", "Stage", "Stop", "decide"]
