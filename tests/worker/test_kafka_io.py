"""The adapter's edges: error classification, deadlines, connection options, and the pending-offsets ledger."""

from __future__ import annotations

import logging
import ssl
import threading
from pathlib import Path

import pytest
from kafka import errors as kafka_errors

from worker.kafka_io import (
    BrokerUnavailableError,
    CommitRejectedError,
    KafkaConfigError,
    KafkaIOError,
    ProducerFencedError,
    TopicPartition,
    _construct,
    call_with_deadline,
    classify,
    connection_options,
    missing_topics,
)
from worker.settings import load_settings
from worker.sink import PendingOffsets

pytestmark = pytest.mark.timeout(30)


@pytest.mark.parametrize(
    ("raised", "expected"),
    [
        (kafka_errors.KafkaTimeoutError("Failed to update metadata"), BrokerUnavailableError),
        (kafka_errors.NotLeaderForPartitionError(), BrokerUnavailableError),
        (kafka_errors.KafkaConnectionError("111 ECONNREFUSED"), BrokerUnavailableError),
        (ConnectionResetError(), BrokerUnavailableError),
        (kafka_errors.CommitFailedError(), CommitRejectedError),
        (kafka_errors.RebalanceInProgressError(), CommitRejectedError),
        (kafka_errors.ProducerFencedError(), ProducerFencedError),
        (kafka_errors.SaslAuthenticationFailedError(), KafkaConfigError),
        (kafka_errors.TopicAuthorizationFailedError(), KafkaConfigError),
        (ssl.SSLCertVerificationError("certificate verify failed"), KafkaConfigError),
        (kafka_errors.MessageSizeTooLargeError(), KafkaIOError),
    ],
)
def test_client_errors_are_classified_once_at_the_edge(raised: BaseException, expected: type[KafkaIOError]) -> None:
    classified = classify(raised)
    assert type(classified) is expected
    assert classified.retriable is (expected is BrokerUnavailableError)


def test_classified_messages_name_the_client_error_once() -> None:
    assert str(classify(kafka_errors.KafkaTimeoutError("no metadata"))) == "KafkaTimeoutError: no metadata"
    assert str(classify(kafka_errors.CommitFailedError())).count("CommitFailedError") == 1


def test_a_call_past_its_deadline_counts_as_broker_unavailable() -> None:
    release = threading.Event()
    with pytest.raises(BrokerUnavailableError, match="commit-transaction did not complete"):
        call_with_deadline(lambda: release.wait(5), 0.05, what="commit-transaction")
    release.set()
    assert call_with_deadline(lambda: 42, 1.0, what="answer") == 42
    with pytest.raises(ValueError, match="boom"):
        call_with_deadline(lambda: (_ for _ in ()).throw(ValueError("boom")), 1.0, what="raise")


def test_a_bootstrap_that_fails_on_credentials_is_a_configuration_error_not_an_outage() -> None:
    def bootstrap_that_logs_then_times_out() -> None:
        logging.getLogger("kafka.net.manager").warning(
            "Bootstrap connection to %s failed: %s", "bootstrap-0", kafka_errors.SaslAuthenticationFailedError("bad")
        )
        raise kafka_errors.KafkaTimeoutError("Unable to bootstrap")

    with pytest.raises(KafkaConfigError, match="SaslAuthenticationFailedError"):
        _construct(bootstrap_that_logs_then_times_out)
    with pytest.raises(BrokerUnavailableError):
        _construct(lambda: (_ for _ in ()).throw(kafka_errors.KafkaTimeoutError("Unable to bootstrap")))


def test_connection_options_carry_security_settings_with_the_secret_unwrapped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("CLAIMS_BOOTSTRAP_SERVERS", "CLAIMS_SECURITY_PROTOCOL"):
        monkeypatch.delenv(name, raising=False)
    ca = tmp_path / "ca.pem"
    ca.write_text("not really a certificate")
    settings = load_settings(
        bootstrap_servers="a:9093, b:9093",
        security_protocol="SASL_SSL",
        sasl_mechanism="SCRAM-SHA-256",
        sasl_username="worker",
        sasl_password="s3cret",
        ssl_cafile=ca,
    )

    options = connection_options(settings)

    assert options["bootstrap_servers"] == ["a:9093", "b:9093"]
    assert (options["security_protocol"], options["sasl_mechanism"]) == ("SASL_SSL", "SCRAM-SHA-256")
    assert (options["sasl_plain_username"], options["sasl_plain_password"]) == ("worker", "s3cret")
    assert options["ssl_cafile"] == str(ca)


def test_missing_topics_lists_the_worker_topics_the_broker_lacks() -> None:
    settings = load_settings(input_topic="in", pass_topic="out", fail_topic="out", dlq_topic="dlq", history="off")
    assert missing_topics({"in", "other"}, settings) == ["out", "dlq"]


def test_with_claim_history_on_its_topics_are_needed_too() -> None:
    settings = load_settings(input_topic="in", pass_topic="out", fail_topic="out", dlq_topic="dlq")
    assert missing_topics({"in", "out", "dlq"}, settings) == ["claims.by-member", "claims.history.changelog"]


def test_pending_offsets_keep_the_highest_offset_and_forget_only_what_a_commit_covered() -> None:
    pending = PendingOffsets()
    a, b = TopicPartition("in", 0), TopicPartition("in", 1)
    pending.add({a: 10, b: 5})
    pending.add({a: 7})
    snapshot = pending.snapshot()
    assert snapshot == {a: 10, b: 5}

    pending.add({b: 9})  # arrives while the commit of `snapshot` is in flight
    pending.committed(snapshot)

    assert pending.snapshot() == {b: 9}
    assert pending.take([b, a]) == {b: 9}
    assert len(pending) == 0
