"""Shared fixtures: a real Kafka broker for the session and fresh topics for each test.

The broker is the one named by CLAIMS_BOOTSTRAP_SERVERS (as `make test` sets it), or else a local broker that
this session starts with `scripts/kafka-local` on a free port and stops at the end. When neither works, every
test that needs Kafka fails with the reason: Kafka tests are never skipped.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Callable, Iterator

import pytest
from kafka import KafkaAdminClient

from tests.kafka.local import LocalBroker
from tests.ports import free_port
from worker.kafka_fixes import close_sockets_of_failed_connects


def pytest_configure(config: pytest.Config) -> None:
    # Tests create kafka-python clients directly too: give them the worker's fix for sockets left open by failed
    # connects, whose ResourceWarning otherwise surfaces in whatever test runs the garbage collector.
    del config
    close_sockets_of_failed_connects()


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """`host:port` of a real Kafka broker for the whole session."""
    configured = os.environ.get("CLAIMS_BOOTSTRAP_SERVERS")
    if configured:
        yield configured
        return
    broker = LocalBroker(free_port())
    try:
        yield broker.start_or_fail(
            "Could not start the local Kafka broker for the tests.\n"
            "Set CLAIMS_BOOTSTRAP_SERVERS to a running broker or fix the local one."
        )
    finally:
        broker.stop()


@pytest.fixture(scope="session")
def kafka_admin(kafka_bootstrap: str) -> Iterator[KafkaAdminClient]:
    try:
        admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap, client_id="tests-admin", request_timeout_ms=30000)
    except Exception as error:  # noqa: BLE001 - turn any connection failure into a clear test failure
        pytest.fail(f"Kafka broker at {kafka_bootstrap} does not answer: {error!r}", pytrace=False)
    yield admin
    admin.close()


TopicFactory = Callable[..., str]


@pytest.fixture
def new_topic(kafka_admin: KafkaAdminClient, request: pytest.FixtureRequest) -> Iterator[TopicFactory]:
    """Factory: `new_topic("input", partitions=3)` creates a uniquely named topic, deleted after the test."""
    created: list[str] = []
    test_name = request.node.name.split("[")[0][-40:]

    def create(purpose: str = "topic", *, partitions: int = 1, config: dict[str, str] | None = None) -> str:
        name = f"t.{test_name}.{purpose}.{uuid.uuid4().hex[:8]}"
        kafka_admin.create_topics(
            {name: {"num_partitions": partitions, "replication_factor": 1, "configs": config or {}}},
            wait_for_metadata=True,
        )
        created.append(name)
        return name

    yield create
    if created:
        # Best effort: names are unique, so a topic left behind cannot disturb another test.
        with contextlib.suppress(Exception):
            kafka_admin.delete_topics(created)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """In CI a skipped test is a failure: every test must run against the real parts."""
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is None:
        return
    skipped = reporter.stats.get("skipped", [])
    if os.environ.get("CI") and skipped and exitstatus == 0:
        reporter.write_line(f"CI: {len(skipped)} test(s) skipped; skipping is not allowed here", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
