"""A broker outage, as an operator sees it: a few log lines (not several a second), and exit 4 soon after the
bound (`CLAIMS_MAX_OUTAGE_S`), at start-up and while running."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from typing import Any

import pytest

from tests.kafka.local import LocalBroker
from tests.ports import free_port
from tests.worker.conftest import Topics, WorkerProcess, json_lines
from worker.topic_set import TopicSet

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(240)]

MakeTopics = Callable[..., Topics]
StartWorker = Callable[..., WorkerProcess]
# The bound: exit 4 within CLAIMS_MAX_OUTAGE_S plus this (issue 17, U6).
EXIT_SLACK_S = 2.0


def _at(line: dict[str, Any]) -> float:
    return dt.datetime.fromisoformat(line["timestamp"].replace("Z", "+00:00")).timestamp()


def _outage_began(lines: list[dict[str, Any]]) -> float:
    """When the worker's outage clock started: its first `kafka.unavailable` line, less the outage it reports."""
    first = next(line for line in lines if line.get("event") == "kafka.unavailable")
    return _at(first) - float(first["outage_s"])


def test_a_36_second_outage_at_start_up_writes_a_few_lines_not_one_per_reconnect(
    worker_topics: MakeTopics, start_worker: StartWorker
) -> None:
    # Given a worker whose broker is unreachable from the start, allowed a longer outage than the test lasts
    worker = start_worker(worker_topics(partitions=1), bootstrap_servers=f"127.0.0.1:{free_port()}", max_outage_s="50")

    # When it keeps trying for a little over 30 seconds (one `kafka.still_unavailable` period), then is stopped
    time.sleep(36)
    assert worker.stop() == 0

    # Then the outage took at most 10 lines: the worker's own, and kafka-python's reconnect errors once each
    lines = json_lines(worker.logs())
    outage = [line for line in lines if line.get("event", "").startswith("kafka.") or "logger" in line]
    assert [line["event"] for line in outage if "logger" not in line][:1] == ["kafka.unavailable"]
    assert len(outage) <= 10, [line["event"] for line in outage]
    kafka_python = [line["event"] for line in lines if str(line.get("logger", "")).startswith("kafka")]
    assert len(kafka_python) == len(set(kafka_python)), kafka_python
    still = [line for line in outage if line.get("event") == "kafka.still_unavailable"]
    assert still
    assert still[-1]["attempts"] >= 1
    assert still[-1]["outage_s"] >= 29


def test_an_unreachable_broker_at_start_up_ends_the_worker_with_exit_4_soon_after_the_bound(
    worker_topics: MakeTopics, start_worker: StartWorker
) -> None:
    # Given the defaults' 30 s request timeout, longer than the outage bound
    worker = start_worker(worker_topics(partitions=1), bootstrap_servers=f"127.0.0.1:{free_port()}", max_outage_s="6")

    assert worker.process.wait(timeout=60) == 4

    lines = worker.events()
    [failed] = [line for line in lines if line.get("event") == "worker.start_failed"]
    assert failed["exit_code"] == 4
    assert _at(failed) - _outage_began(lines) <= 6 + EXIT_SLACK_S


def test_a_broker_lost_while_running_ends_the_worker_with_exit_4_soon_after_the_bound(
    start_worker: StartWorker, tmp_path: object
) -> None:
    # Given a worker running against a broker of its own, idle after its first claims
    broker = LocalBroker(free_port())
    bootstrap = broker.start_or_fail("could not start the outage test's broker")
    try:
        topics = TopicSet.prefixed(f"t.outage.{free_port()}")
        from kafka import KafkaAdminClient  # noqa: PLC0415 - only this test talks to its own broker

        admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="tests-outage")
        try:
            admin.create_topics(topics.new_topics(partitions=1), wait_for_metadata=True)
        finally:
            admin.close()
        worker = start_worker(topics, bootstrap_servers=bootstrap, max_outage_s="8")
        worker.wait_for_event("history.restored", timeout_s=90)

        # When the broker goes away for good
        broker.stop()

        # Then the worker exits 4 within the bound and a little more, with a few outage lines
        assert worker.process.wait(timeout=90) == 4
        lines = worker.events()
        [stopping] = [line for line in lines if line.get("event") == "worker.stopping"]
        assert stopping["exit_code"] == 4
        assert _at(stopping) - _outage_began(lines) <= 8 + EXIT_SLACK_S
        outage = [
            line for line in lines if line.get("event", "").startswith("kafka.") and "unavailable" in line["event"]
        ]
        assert 1 <= len(outage) <= 3
    finally:
        broker.stop()
