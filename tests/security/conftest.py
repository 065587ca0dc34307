"""A broker with SASL/SCRAM-SHA-256 and TLS listeners for the worker's security tests, and helpers around it.

The broker is `scripts/kafka-local` with its extra listeners on free ports, certificates made with keytool in a
temporary directory (tests/kafka/security.py); it runs once for this package and is wiped afterwards. Topics are
created, and inputs published and read back, on its PLAINTEXT port: only the worker uses the secured listeners.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from kafka import KafkaAdminClient

from tests.kafka.security import SecureBroker, make_untrusted_ca_pem, running_secure_broker
from tests.worker.conftest import Topics, WorkerProcess
from worker.topic_set import TopicSet

# Distinctive, so that a search of logs and errors for them cannot match anything else.
WORKER_PASSWORD = "Pw-4f1d9c7e-right-SCRAM"
WRONG_PASSWORD = "Pw-0b7a33e2-wrong-SCRAM"
SCRAM_USERS = {"worker": WORKER_PASSWORD}


@pytest.fixture(scope="package")
def secure_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureBroker]:
    with running_secure_broker(tmp_path_factory.mktemp("tls"), SCRAM_USERS) as broker:
        yield broker


@pytest.fixture(scope="package")
def untrusted_ca_pem(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CA that did not sign the broker's certificate."""
    return make_untrusted_ca_pem(tmp_path_factory.mktemp("other-ca"))


@pytest.fixture
def secure_topics(secure_broker: SecureBroker) -> Iterator[Topics]:
    admin = KafkaAdminClient(bootstrap_servers=secure_broker.bootstrap, client_id="tests-security-topics")
    base = f"t.security.{uuid.uuid4().hex[:8]}"
    topics = TopicSet.prefixed(base)
    new_topics = topics.new_topics(partitions=2)
    names = [topic.name for topic in new_topics]
    try:
        admin.create_topics(new_topics, wait_for_metadata=True)
        yield topics
        with contextlib.suppress(Exception):  # the broker is wiped after the package anyway
            admin.delete_topics(names)
    finally:
        admin.close()


StartSecureWorker = Callable[..., WorkerProcess]


@pytest.fixture
def start_secure_worker(tmp_path: Path) -> Iterator[StartSecureWorker]:
    """Start `claims-worker run` against `bootstrap` with `settings` as CLAIMS_* variables; killed afterwards."""
    started: list[WorkerProcess] = []

    def start(bootstrap: str, topics: Topics, **settings: str) -> WorkerProcess:
        worker = WorkerProcess(bootstrap, topics, tmp_path / f"worker-{len(started)}.log", **settings)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.kill()


def sasl_settings(password: str) -> dict[str, str]:
    return {
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": "SCRAM-SHA-256",
        "sasl_username": "worker",
        "sasl_password": password,
    }
