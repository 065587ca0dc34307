"""Logs, metrics, probes, retry policy and the shutdown signal, each on its own."""

from __future__ import annotations

import io
import logging
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest
import structlog
from prometheus_client import CollectorRegistry

from schemas.parsing import DeadLetterReason
from schemas.verdict import Outcome, RuleSetRef
from tests.worker.conftest import json_lines
from tests.worker.fakes import FakeRecord
from worker.batch import BatchResult, Processed
from worker.evaluator import Verdict
from worker.kafka_io import TopicPartition
from worker.logs import REDACTED, RepeatLimiter, configure_logging, resolve_format
from worker.metrics import MAX_RULE_LABELS, WorkerMetrics
from worker.probes import HealthState, ProbeServer
from worker.retry import BackoffDelays, BrokerOutageError, OutageClock
from worker.routing import OutputRecord
from worker.settings import LogFormat
from worker.sink import Delivery

pytestmark = pytest.mark.timeout(30)


# --- logs -----------------------------------------------------------------------------------------------------------


def test_json_logs_have_dotted_events_levels_timestamps_and_static_context(captured_logs: io.StringIO) -> None:
    configure_logging(LogFormat.JSON, "info", stream=captured_logs, static_context={"worker_id": "w-1"})

    structlog.get_logger().info("batch.processed", records=3)
    structlog.get_logger().debug("claim.failed", claim_id="C1")

    [line] = json_lines(captured_logs.getvalue())
    assert line["event"] == "batch.processed"
    assert line["level"] == "info"
    assert line["records"] == 3
    assert line["worker_id"] == "w-1"
    assert line["timestamp"].endswith("Z")


def test_keys_that_could_hold_claim_content_are_redacted(captured_logs: io.StringIO) -> None:
    structlog.get_logger().warning("oops", value=b'{"member_id": "M1"}', patient={"birth_date": "1950-01-01"})

    [line] = json_lines(captured_logs.getvalue())
    assert line["value"] == REDACTED
    assert line["patient"] == REDACTED
    assert "1950-01-01" not in captured_logs.getvalue()


def test_kafka_python_is_never_logged_at_debug_because_it_prints_record_values(captured_logs: io.StringIO) -> None:
    logging.getLogger("kafka.producer.kafka").debug("Sending (key=%r value=%r)", b"k", b"patient data")
    logging.getLogger("kafka.conn").warning("connection to %s lost", "node-1")

    text = captured_logs.getvalue()
    assert "patient data" not in text
    [line] = json_lines(text)
    assert (line["event"], line["logger"], line["level"]) == ("connection to node-1 lost", "kafka.conn", "warning")


def _kafka_record(message: str, *args: object, name: str = "kafka.net.manager") -> logging.LogRecord:
    return logging.LogRecord(name, logging.ERROR, __file__, 1, message, args, None)


def test_a_repeating_kafka_python_line_is_shown_once_a_window_with_a_count_of_those_hidden() -> None:
    now = [0.0]
    limiter = RepeatLimiter(60.0, clock=lambda: now[0])

    shown = []
    for second in range(0, 130, 1):  # a reconnect loop: one failure a second for a little over two minutes
        now[0] = float(second)
        record = _kafka_record("Connection failed: %s", "KafkaConnectionError: 111 ECONNREFUSED")
        if limiter.filter(record):
            shown.append((second, record.getMessage()))

    assert [second for second, _ in shown] == [0, 60, 120]
    assert shown[0][1] == "Connection failed: KafkaConnectionError: 111 ECONNREFUSED"
    assert shown[1][1].endswith("(and 59 more like it in the last 60 s)")


def test_a_new_kind_of_kafka_python_line_is_not_hidden_behind_a_repeating_one() -> None:
    limiter = RepeatLimiter(60.0, clock=lambda: 5.0)
    assert limiter.filter(_kafka_record("Connection failed: %s", "refused"))
    assert not limiter.filter(_kafka_record("Connection failed: %s", "refused"))

    assert limiter.filter(_kafka_record("SASL authentication failed: %s", "bad password"))
    assert limiter.filter(_kafka_record("Connection failed: %s", "refused", name="kafka.net.connection"))
    assert limiter.filter(logging.LogRecord("worker", logging.ERROR, __file__, 1, "Connection failed", (), None))
    assert limiter.filter(logging.LogRecord("worker", logging.ERROR, __file__, 1, "Connection failed", (), None))


def test_log_format_defaults_to_console_on_a_tty_and_json_otherwise() -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    assert resolve_format(None, Tty()) is LogFormat.CONSOLE
    assert resolve_format(None, io.StringIO()) is LogFormat.JSON
    assert resolve_format(LogFormat.JSON, Tty()) is LogFormat.JSON


# --- metrics --------------------------------------------------------------------------------------------------------


def new_metrics() -> tuple[WorkerMetrics, CollectorRegistry]:
    registry = CollectorRegistry()
    return WorkerMetrics(registry, version="9.9", ruleset=RuleSetRef(id="r", version="1")), registry


def test_closed_label_sets_exist_at_zero_from_start_up() -> None:
    _, registry = new_metrics()

    for outcome in Outcome:
        assert registry.get_sample_value("claims_verdicts_total", {"outcome": outcome.value}) == 0
    for reason in DeadLetterReason:
        assert registry.get_sample_value("claims_dead_letters_total", {"reason": reason.value}) == 0
    assert registry.get_sample_value("claims_transactions_total", {"outcome": "aborted"}) == 0


def _delivered(*, timestamps_ms: list[int], findings: tuple[tuple[str, str], ...] = ()) -> BatchResult:
    """A delivered batch of passing claims with these record timestamps, each with `findings`."""
    processed = [
        Processed(
            FakeRecord("in", 0, offset, timestamp, b"C", b"{}"),
            Verdict(f"C{offset}", Outcome.PASS, b"{}", findings, 0.0002 + offset / 10_000),
            OutputRecord("pass", b"C", b"{}", None),
        )
        for offset, timestamp in enumerate(timestamps_ms)
    ]
    return BatchResult.of(
        processed, partitions=(0,), duration_s=0.01, delivered_at_s=1000.0, delivery=Delivery(committed=True)
    )


def test_end_to_end_latency_is_delivery_time_minus_record_timestamp() -> None:
    metrics, registry = new_metrics()

    metrics.batch_delivered(_delivered(timestamps_ms=[999_950, 998_000]))

    assert registry.get_sample_value("claims_end_to_end_latency_seconds_sum") == pytest.approx(2.05)
    assert registry.get_sample_value("claims_end_to_end_latency_seconds_bucket", {"le": "0.1"}) == 1
    assert registry.get_sample_value("claims_validation_duration_seconds_count") == 2
    assert registry.get_sample_value("claims_validation_duration_seconds_sum") == pytest.approx(0.0005)


def test_rule_labels_are_capped_so_a_rule_set_bug_cannot_explode_cardinality() -> None:
    metrics, registry = new_metrics()
    findings = tuple((f"R{index}", "error") for index in range(MAX_RULE_LABELS + 5))

    metrics.batch_delivered(_delivered(timestamps_ms=[999_000], findings=findings))

    assert registry.get_sample_value("claims_findings_total", {"rule_id": "other", "severity": "error"}) == 5


def test_revoked_partitions_stop_reporting_lag() -> None:
    metrics, registry = new_metrics()
    partition = TopicPartition("claims.submitted", 3)
    metrics.partitions_assigned([partition], [partition])
    metrics.lag(partition, 42)
    labels = {"topic": "claims.submitted", "partition": "3"}
    assert registry.get_sample_value("claims_consumer_lag_records", labels) == 42

    metrics.partitions_revoked([partition], [], lost=False)

    assert registry.get_sample_value("claims_consumer_lag_records", labels) is None
    assert registry.get_sample_value("claims_rebalances_total", {"event": "revoked"}) == 1
    assert registry.get_sample_value("claims_assigned_partitions", {"topic": "claims.submitted"}) == 0


# --- probes ---------------------------------------------------------------------------------------------------------


@pytest.fixture
def probe_server() -> Iterator[tuple[ProbeServer, HealthState, list[float]]]:
    clock = [0.0]
    health = HealthState(stall_after_s=10.0, clock=lambda: clock[0])
    registry = CollectorRegistry()
    WorkerMetrics(registry, version="1", ruleset=RuleSetRef(id="r", version="1"))
    server = ProbeServer(host="127.0.0.1", port=0, registry=registry, health=health).start()
    yield server, health, clock
    server.stop()


def get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def test_metrics_are_served_in_the_prometheus_text_format(
    probe_server: tuple[ProbeServer, HealthState, list[float]],
) -> None:
    server, _, _ = probe_server
    status, body = get(server.port, "/metrics")
    assert status == 200
    assert 'claims_verdicts_total{outcome="pass"} 0.0' in body


def test_readyz_follows_readiness(probe_server: tuple[ProbeServer, HealthState, list[float]]) -> None:
    server, health, _ = probe_server
    assert get(server.port, "/readyz")[0] == 503
    health.set_ready(True)
    assert get(server.port, "/readyz")[0] == 200


def test_healthz_fails_when_the_loop_stops_ticking(probe_server: tuple[ProbeServer, HealthState, list[float]]) -> None:
    server, health, clock = probe_server
    assert get(server.port, "/healthz")[0] == 200
    clock[0] += 11.0
    assert get(server.port, "/healthz")[0] == 503
    health.tick()
    assert get(server.port, "/healthz")[0] == 200


def test_unknown_paths_are_not_found(probe_server: tuple[ProbeServer, HealthState, list[float]]) -> None:
    server, _, _ = probe_server
    assert get(server.port, "/")[0] == 404


# --- retry ----------------------------------------------------------------------------------------------------------


def test_backoff_doubles_up_to_its_bound_with_jitter_and_resets() -> None:
    backoff = BackoffDelays(initial_s=1.0, max_s=4.0)
    delays = [backoff.next_delay_s() for _ in range(5)]
    assert 0.8 <= delays[0] <= 1.2
    assert 1.6 <= delays[1] <= 2.4
    assert all(3.2 <= delay <= 4.8 for delay in delays[2:])
    backoff.reset()
    assert backoff.next_delay_s() <= 1.2


def test_the_outage_clock_raises_past_its_bound_and_stops_on_success() -> None:
    now = [0.0]
    outage = OutageClock(max_outage_s=10.0, clock=lambda: now[0])
    outage.failed("poll")
    now[0] = 9.0
    outage.failed("poll")
    assert outage.remaining_s() == pytest.approx(1.0)
    outage.succeeded()
    now[0] = 30.0
    outage.failed("poll")  # a new outage starts now
    now[0] = 40.5
    with pytest.raises(BrokerOutageError):
        outage.failed("poll")


def test_a_failed_blocking_call_counts_from_when_it_started() -> None:
    now = [100.0]
    outage = OutageClock(max_outage_s=10.0, clock=lambda: now[0])
    with pytest.raises(BrokerOutageError):
        outage.failed("flush", started=85.0)
