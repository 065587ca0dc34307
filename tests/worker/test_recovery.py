"""The one error decision, over every error class the adapter classifies into and every stage of the loop."""

from __future__ import annotations

import pytest

from worker.exit_codes import ExitCode
from worker.kafka_io import (
    BrokerUnavailableError,
    CommitRejectedError,
    KafkaConfigError,
    KafkaIOError,
    ProducerFencedError,
)
from worker.recovery import Backoff, Decision, ProducerUnrecoverableError, Rewind, Stage, Stop, decide

pytestmark = pytest.mark.timeout(10)

ERROR_CLASSES: tuple[type[KafkaIOError], ...] = (
    BrokerUnavailableError,
    CommitRejectedError,
    KafkaConfigError,
    ProducerFencedError,
    ProducerUnrecoverableError,
    KafkaIOError,
)
DELIVERING = {Stage.PRODUCE, Stage.TRANSACTION}

# What each (error class, stage) must give: the decision's kind, and for Stop its exit code; for Rewind whether
# the producer is replaced.
EXPECTED: dict[type[KafkaIOError], dict[Stage, Decision | ExitCode]] = {
    BrokerUnavailableError: dict.fromkeys(Stage, Backoff()),
    CommitRejectedError: dict.fromkeys(Stage, Rewind()),
    KafkaConfigError: dict.fromkeys(Stage, ExitCode.CONFIG),
    ProducerFencedError: dict.fromkeys(Stage, ExitCode.FAILURE),
    ProducerUnrecoverableError: dict.fromkeys(Stage, ExitCode.FAILURE),
    KafkaIOError: {stage: Rewind(fresh_producer=True) if stage in DELIVERING else ExitCode.FAILURE for stage in Stage},
}


@pytest.mark.parametrize("stage", list(Stage), ids=str)
@pytest.mark.parametrize("error_class", ERROR_CLASSES, ids=lambda cls: cls.__name__)
def test_every_error_class_at_every_stage_gets_its_decision(error_class: type[KafkaIOError], stage: Stage) -> None:
    decision = decide(error_class("boom"), stage)

    expected = EXPECTED[error_class][stage]
    if isinstance(expected, ExitCode):
        assert isinstance(decision, Stop)
        assert decision.exit_code is expected
        assert decision.reason.startswith(f"{stage}: ")
    else:
        assert decision == expected


def test_the_table_covers_every_stage_of_every_error_class() -> None:
    assert set(EXPECTED) == set(ERROR_CLASSES)
    assert all(set(row) == set(Stage) for row in EXPECTED.values())


def test_a_fenced_producer_stop_tells_the_operator_what_to_check() -> None:
    decision = decide(ProducerFencedError("ProducerFencedError"), Stage.TRANSACTION)

    assert isinstance(decision, Stop)
    assert "CLAIMS_WORKER_ID" in decision.reason


def test_stage_values_are_the_retry_metric_labels() -> None:
    assert [stage.value for stage in Stage] == ["poll", "produce", "transaction", "commit", "probe"]
    assert {stage for stage in Stage if stage.delivers} == DELIVERING
