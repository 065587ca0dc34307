"""`claims-worker run` against real SASL/SCRAM-SHA-256 and TLS listeners, configured from the environment.

Right credentials: every claim is validated end to end over the secured listener. A wrong password or an
untrusted certificate: the worker stops with the configuration exit code (3) and says which settings to check,
instead of retrying as if the broker were down (which would end, much later, with the outage code 4: the
outage bound is raised here so the two cannot be confused). The password never appears in the worker's output.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from tests.kafka.security import SecureBroker
from tests.security.conftest import WORKER_PASSWORD, WRONG_PASSWORD, StartSecureWorker, sasl_settings
from tests.worker import claims
from tests.worker.conftest import Topics, publish, read_outputs
from tests.worker.test_kafka_e2e import source_of
from worker.exit_codes import ExitCode

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(240)]

# Longer than the worker could take to give up on a broker it believes is down: exit 3 cannot be the outage path.
OUTAGE_BOUND_S = "150"


def listener_settings(broker: SecureBroker, listener: str) -> tuple[str, dict[str, str]]:
    ca = str(broker.tls.ca.pem)
    if listener == "sasl_plaintext":
        return broker.sasl_bootstrap, sasl_settings(WORKER_PASSWORD)
    if listener == "ssl":
        return broker.ssl_bootstrap, {"security_protocol": "SSL", "ssl_cafile": ca}
    sasl_ssl = {**sasl_settings(WORKER_PASSWORD), "security_protocol": "SASL_SSL", "ssl_cafile": ca}
    return broker.sasl_ssl_bootstrap, sasl_ssl


@pytest.mark.parametrize("listener", ["sasl_plaintext", "ssl", "sasl_ssl"])
def test_the_worker_validates_claims_end_to_end_over_a_secured_listener(
    secure_broker: SecureBroker, secure_topics: Topics, start_secure_worker: StartSecureWorker, listener: str
) -> None:
    # Given claims of every kind on the input topic
    inputs = [
        (f"{kind}-{index}".encode(), build(f"{kind}-{index}"))
        for index in range(5)
        for kind, build in claims.KINDS.items()
    ]
    placed = publish(secure_broker.bootstrap, secure_topics.input, inputs)

    # When the worker reads and writes only through the secured listener
    bootstrap, settings = listener_settings(secure_broker, listener)
    worker = start_secure_worker(bootstrap, secure_topics, **settings)
    outputs = read_outputs(secure_broker.bootstrap, secure_topics.outputs, expected=len(inputs))

    # Then every claim has exactly one output, and the password shows nowhere in what the worker wrote
    assert Counter(source_of(output) for output in outputs) == Counter(dict.fromkeys(placed, 1))
    assert worker.stop() == ExitCode.OK
    started = worker.wait_for_event("worker.starting", timeout_s=1)
    assert started["settings"]["security_protocol"] == settings["security_protocol"]
    assert WORKER_PASSWORD not in worker.logs()


def test_a_wrong_password_stops_the_worker_with_the_configuration_exit_code(
    secure_broker: SecureBroker, secure_topics: Topics, start_secure_worker: StartSecureWorker
) -> None:
    worker = start_secure_worker(
        secure_broker.sasl_bootstrap, secure_topics, **sasl_settings(WRONG_PASSWORD), max_outage_s=OUTAGE_BOUND_S
    )

    assert worker.process.wait(timeout=200) == ExitCode.CONFIG
    reason = worker.wait_for_event("worker.start_failed", timeout_s=1)["reason"]
    assert "SASL authentication failed" in reason
    assert "CLAIMS_SASL_PASSWORD" in reason
    assert WRONG_PASSWORD not in worker.logs()


def test_an_untrusted_broker_certificate_stops_the_worker_with_the_configuration_exit_code(
    secure_broker: SecureBroker,
    secure_topics: Topics,
    start_secure_worker: StartSecureWorker,
    untrusted_ca_pem: Path,
) -> None:
    worker = start_secure_worker(
        secure_broker.ssl_bootstrap,
        secure_topics,
        security_protocol="SSL",
        ssl_cafile=str(untrusted_ca_pem),
        max_outage_s=OUTAGE_BOUND_S,
    )

    assert worker.process.wait(timeout=200) == ExitCode.CONFIG
    reason = worker.wait_for_event("worker.start_failed", timeout_s=1)["reason"]
    assert "certificate is not trusted" in reason
    assert "CERTIFICATE_VERIFY_FAILED" in reason
    assert "CLAIMS_SSL_CAFILE" in reason


def test_an_untrusted_certificate_under_sasl_ssl_fails_before_the_password_is_sent(
    secure_broker: SecureBroker,
    secure_topics: Topics,
    start_secure_worker: StartSecureWorker,
    untrusted_ca_pem: Path,
) -> None:
    worker = start_secure_worker(
        secure_broker.sasl_ssl_bootstrap,
        secure_topics,
        **{**sasl_settings(WORKER_PASSWORD), "security_protocol": "SASL_SSL"},
        ssl_cafile=str(untrusted_ca_pem),
        max_outage_s=OUTAGE_BOUND_S,
    )

    assert worker.process.wait(timeout=200) == ExitCode.CONFIG
    reason = worker.wait_for_event("worker.start_failed", timeout_s=1)["reason"]
    assert "certificate is not trusted" in reason
    assert WORKER_PASSWORD not in worker.logs()
