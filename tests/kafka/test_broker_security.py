"""The local broker's SASL/SCRAM-SHA-256 and TLS listeners, and how kafka-python 3.0.12 fails on them.

This module starts its own broker (scripts/kafka-local with KAFKA_SASL_PORT, KAFKA_SSL_PORT, KAFKA_SASL_SSL_PORT) on
free ports, with a CA and a broker certificate made by keytool in a temporary directory, and wipes it afterwards.

What a worker must know (asserted below): kafka-python 3.0.12 does not raise an authentication or TLS error type.
A wrong SCRAM password and an untrusted broker certificate both end the client constructor (producer, consumer,
admin) with `kafka.errors.KafkaTimeoutError("Unable to bootstrap from ...")` once `bootstrap_timeout_ms` has
passed: the same type as an unreachable broker. The cause is only in kafka-python's log records: reliably for TLS
(every attempt logs CERTIFICATE_VERIFY_FAILED), not for SCRAM (an attempt logs SaslAuthenticationFailedError or,
when the broker's answer and its close arrive together, just "socket disconnected").
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.admin import ScramMechanism

from tests.kafka.security import SecureBroker, construct_client_in_child, make_untrusted_ca_pem, running_secure_broker

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(120, func_only=True)]

USERS = {"worker": "worker-secret", "admin": "admin-secret"}
# Short, so that a refused client gives up quickly (the whole wait of a refused client is this long)...
REFUSED_BOOTSTRAP_TIMEOUT_MS = 2000
# ...and generous where the client is expected to get in (it returns as soon as it does, well under a second).
BOOTSTRAP_TIMEOUT_MS = 30000
BOOTSTRAP_FAILED = "kafka.errors.KafkaTimeoutError"


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureBroker]:
    with running_secure_broker(tmp_path_factory.mktemp("tls"), USERS) as secure:
        yield secure


@pytest.fixture(scope="module")
def untrusted_ca(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The PEM of a CA that did not sign the broker certificate."""
    return make_untrusted_ca_pem(tmp_path_factory.mktemp("other-ca"))


@pytest.fixture(scope="module")
def plain_admin(broker: SecureBroker) -> Iterator[KafkaAdminClient]:
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap, client_id="tests-security-admin")
    yield admin
    admin.close()


@pytest.fixture
def topic(plain_admin: KafkaAdminClient) -> Iterator[str]:
    name = f"t.security.{uuid.uuid4().hex[:8]}"
    plain_admin.create_topics({name: {"num_partitions": 1, "replication_factor": 1}}, wait_for_metadata=True)
    yield name
    with contextlib.suppress(Exception):  # best effort: the whole broker is wiped after the module anyway
        plain_admin.delete_topics([name])


def scram(user: str, password: str) -> dict[str, object]:
    return {"sasl_mechanism": "SCRAM-SHA-256", "sasl_plain_username": user, "sasl_plain_password": password}


def produce_and_consume(bootstrap: str, topic: str, **security: object) -> list[bytes]:
    """Send five records and read them back in a consumer group, every connection on the secured listener."""
    sent = [f"claim-{n}".encode() for n in range(5)]
    producer = KafkaProducer(bootstrap_servers=bootstrap, **security)
    try:
        for value in sent:
            producer.send(topic, value=value)
        producer.flush(timeout=30)
    finally:
        producer.close()

    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"{topic}.group",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        **security,
    )
    received: list[bytes] = []
    try:
        give_up_at = time.monotonic() + 60
        while len(received) < len(sent) and time.monotonic() < give_up_at:
            for batch in consumer.poll(timeout_ms=500).values():
                received.extend(record.value for record in batch)
        consumer.commit()  # the group coordinator answers on the same listener
    finally:
        consumer.close()
    return received


def failed_authentications(broker: SecureBroker, reason: str) -> int:
    """How many failed authentications with `reason` the broker has logged so far."""
    if not broker.log_file.exists():
        return 0
    text = broker.log_file.read_text(errors="replace")
    return sum(1 for line in text.splitlines() if "Failed authentication with" in line and reason in line)


def wait_for_failed_authentications(broker: SecureBroker, reason: str, more_than: int) -> int:
    """Bounded wait (10 s) for the broker to log one more failed authentication; returns the last count."""
    give_up_at = time.monotonic() + 10
    count = failed_authentications(broker, reason)
    while count <= more_than and time.monotonic() < give_up_at:
        time.sleep(0.2)
        count = failed_authentications(broker, reason)
    return count


# Broker log (Selector, INFO) for a refused SCRAM login; it does not name the user.
INVALID_SCRAM = "invalid credentials with SASL mechanism SCRAM-SHA-256"
# What kafka-python logs for each connection attempt to a broker whose certificate chain it does not trust.
UNTRUSTED_CERTIFICATE = (
    "kafka.errors.KafkaConnectionError: KafkaConnectionError: Handshake failed: [SSL: CERTIFICATE_VERIFY_FAILED]"
)


# --- SASL_PLAINTEXT with SCRAM-SHA-256 --------------------------------------------------------------------------


def test_scram_user_with_the_right_password_produces_and_consumes(broker: SecureBroker, topic: str) -> None:
    received = produce_and_consume(
        broker.sasl_bootstrap, topic, security_protocol="SASL_PLAINTEXT", **scram("worker", "worker-secret")
    )

    assert received == [f"claim-{n}".encode() for n in range(5)]


@pytest.mark.parametrize(
    ("kind", "user", "password"),
    [("producer", "worker", "not-the-password"), ("consumer", "worker", "not-the-password"), ("admin", "nobody", "x")],
)
def test_wrong_scram_credentials_end_the_constructor_with_a_bootstrap_timeout(
    broker: SecureBroker, kind: str, user: str, password: str
) -> None:
    before = failed_authentications(broker, INVALID_SCRAM)

    outcome = construct_client_in_child(
        kind,
        {
            "bootstrap_servers": broker.sasl_bootstrap,
            "security_protocol": "SASL_PLAINTEXT",
            "bootstrap_timeout_ms": REFUSED_BOOTSTRAP_TIMEOUT_MS,
            **scram(user, password),
        },
    )

    # Not SaslAuthenticationFailedError: kafka-python retries the bootstrap until bootstrap_timeout_ms and then
    # raises the same timeout as for a broker that is down.
    assert outcome.raised == BOOTSTRAP_FAILED
    assert outcome.message == f"KafkaTimeoutError: Unable to bootstrap from {broker.sasl_bootstrap}"
    # The broker did refuse the credentials. (Client side, kafka-python logs SaslAuthenticationFailedError for only
    # some attempts: when the broker's error response and its close arrive in one read, it reports
    # "socket disconnected" instead, so outcome.logged cannot be relied on for SASL.)
    assert wait_for_failed_authentications(broker, INVALID_SCRAM, more_than=before) > before


def test_changed_scram_users_apply_to_the_existing_data_dir(broker: SecureBroker) -> None:
    def can_log_in(user: str, password: str, *, expected: bool) -> bool:
        timeout_ms = BOOTSTRAP_TIMEOUT_MS if expected else REFUSED_BOOTSTRAP_TIMEOUT_MS
        outcome = construct_client_in_child(
            "admin",
            {
                "bootstrap_servers": broker.sasl_bootstrap,
                "security_protocol": "SASL_PLAINTEXT",
                "bootstrap_timeout_ms": timeout_ms,
                **scram(user, password),
            },
        )
        assert outcome.raised in (None, BOOTSTRAP_FAILED), outcome
        return outcome.raised is None

    def start_with(users: dict[str, str]) -> None:
        started = broker.start(scram_users=users)  # reuses the running broker, then syncs the users
        assert started.returncode == 0, started.stderr
        assert not any(password in started.stdout + started.stderr for password in users.values())

    try:
        # A user added after format time, then its password rotated
        start_with({**USERS, "analyst": "analyst-first"})
        assert can_log_in("analyst", "analyst-first", expected=True)
        start_with({**USERS, "analyst": "analyst-second"})
        assert not can_log_in("analyst", "analyst-first", expected=False)
        assert can_log_in("analyst", "analyst-second", expected=True)
    finally:
        # Back to the module's users: the unlisted analyst loses its credential
        start_with(USERS)
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap, client_id="tests-security-users")
    try:
        described = admin.describe_user_scram_credentials()
    finally:
        admin.close()
    mechanisms = {user: [info["mechanism"] for info in described[user]["credential_infos"]] for user in described}
    assert mechanisms == {user: [ScramMechanism.SCRAM_SHA_256] for user in USERS}


# --- SSL and SASL_SSL ---------------------------------------------------------------------------------------------


def test_tls_client_trusting_the_ca_produces_and_consumes(broker: SecureBroker, topic: str) -> None:
    received = produce_and_consume(
        broker.ssl_bootstrap, topic, security_protocol="SSL", ssl_cafile=str(broker.tls.ca.pem)
    )

    assert received == [f"claim-{n}".encode() for n in range(5)]


def test_scram_over_tls_produces_and_consumes(broker: SecureBroker, topic: str) -> None:
    received = produce_and_consume(
        broker.sasl_ssl_bootstrap,
        topic,
        security_protocol="SASL_SSL",
        ssl_cafile=str(broker.tls.ca.pem),
        **scram("admin", "admin-secret"),
    )

    assert received == [f"claim-{n}".encode() for n in range(5)]


@pytest.mark.parametrize(
    ("listener", "extra"),
    [("ssl", {}), ("sasl_ssl", {"security_protocol": "SASL_SSL", **scram("worker", "worker-secret")})],
)
def test_tls_client_not_trusting_the_ca_ends_the_constructor_with_a_bootstrap_timeout(
    broker: SecureBroker, untrusted_ca: Path, listener: str, extra: dict[str, object]
) -> None:
    bootstrap = broker.ssl_bootstrap if listener == "ssl" else broker.sasl_ssl_bootstrap

    outcome = construct_client_in_child(
        "consumer",
        {
            "bootstrap_servers": bootstrap,
            "security_protocol": "SSL",
            "ssl_cafile": str(untrusted_ca),
            "bootstrap_timeout_ms": REFUSED_BOOTSTRAP_TIMEOUT_MS,
            **extra,
        },
    )

    assert outcome.raised == BOOTSTRAP_FAILED
    assert outcome.message == f"KafkaTimeoutError: Unable to bootstrap from {bootstrap}"
    # Every attempt fails the handshake the same way, so here the logged cause is reliable.
    assert outcome.logged
    assert all(error.startswith(UNTRUSTED_CERTIFICATE) for error in outcome.logged), outcome.logged


# --- the script ----------------------------------------------------------------------------------------------------


def test_status_lists_the_extra_listeners(broker: SecureBroker) -> None:
    status = broker.run("status", timeout_s=60)

    assert status.returncode == 0
    assert status.stdout.split()[2:] == [
        f"bootstrap={broker.bootstrap}",
        f"sasl_plaintext={broker.sasl_bootstrap}",
        f"ssl={broker.ssl_bootstrap}",
        f"sasl_ssl={broker.sasl_ssl_bootstrap}",
    ]
