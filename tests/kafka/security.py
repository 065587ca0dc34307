"""Test-time TLS material and a local broker with SASL/TLS listeners, for tests/kafka/test_broker_security.py (the
broker's behaviour) and tests/security (the worker against it), which start it the same way: `running_secure_broker`.

Certificates are made with the JDK's `keytool` (the broker needs a JDK anyway, so no new dependency) in a
temporary directory at test time; nothing here is ever committed. The broker is `scripts/kafka-local` with its
optional extra listeners, on ports of its own, so it never disturbs the session broker of tests/conftest.py.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.kafka.local import BROKER_START_TIMEOUT_S, REPO_ROOT, LocalBroker, run_kafka_local
from tests.ports import free_ports

KEYTOOL_TIMEOUT_S = 60


def _keytool() -> str:
    java_home = os.environ.get("JAVA_HOME")
    if java_home and (Path(java_home) / "bin" / "keytool").is_file():
        return str(Path(java_home) / "bin" / "keytool")
    found = shutil.which("keytool")
    if found is None:
        raise RuntimeError("keytool (part of the JDK the local broker needs) is not on PATH and JAVA_HOME has none")
    return found


def _run_keytool(*args: str) -> None:
    result = subprocess.run([_keytool(), *args], capture_output=True, text=True, timeout=KEYTOOL_TIMEOUT_S, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"keytool {args[0]} failed ({result.returncode}): {result.stdout}{result.stderr}")


@dataclass(frozen=True)
class CertificateAuthority:
    keystore: Path  # PKCS12 with the CA's private key (alias "ca"), to sign with
    password: str
    pem: Path  # the CA certificate in PEM: what a client passes as ssl_cafile


@dataclass(frozen=True)
class BrokerTls:
    ca: CertificateAuthority  # the CA that signed the broker certificate
    keystore: Path  # PKCS12: the broker's key with its chain (broker certificate, CA): KAFKA_SSL_KEYSTORE
    password: str  # KAFKA_SSL_KEYSTORE_PASSWORD


def make_ca(directory: Path, name: str, password: str = "ca-secret") -> CertificateAuthority:
    """A self-signed CA (RSA 2048, valid from yesterday for two days, so clock skew cannot bite)."""
    directory.mkdir(parents=True, exist_ok=True)
    keystore, pem = directory / f"{name}.p12", directory / f"{name}.pem"
    store = ("-keystore", str(keystore), "-storetype", "PKCS12", "-storepass", password)
    _run_keytool(
        "-genkeypair", "-alias", "ca", "-dname", f"CN={name}", "-keyalg", "RSA", "-keysize", "2048",
        "-startdate", "-1d", "-validity", "2", "-ext", "bc:c=ca:true", "-ext", "ku:c=keyCertSign,cRLSign",
        "-keypass", password, *store,
    )  # fmt: skip
    _run_keytool("-exportcert", "-rfc", "-alias", "ca", "-file", str(pem), *store)
    return CertificateAuthority(keystore=keystore, password=password, pem=pem)


def make_broker_tls(directory: Path, ca: CertificateAuthority, password: str = "broker-secret") -> BrokerTls:
    """A broker key and certificate for 127.0.0.1 and localhost (SAN, server auth), signed by `ca`."""
    directory.mkdir(parents=True, exist_ok=True)
    keystore, csr, cert = directory / "broker.p12", directory / "broker.csr", directory / "broker.pem"
    store = ("-keystore", str(keystore), "-storetype", "PKCS12", "-storepass", password)
    _run_keytool(
        "-genkeypair", "-alias", "broker", "-dname", "CN=localhost", "-keyalg", "RSA", "-keysize", "2048",
        "-startdate", "-1d", "-validity", "2", "-keypass", password, *store,
    )  # fmt: skip
    _run_keytool("-certreq", "-alias", "broker", "-file", str(csr), *store)
    _run_keytool(
        "-gencert", "-alias", "ca", "-keystore", str(ca.keystore), "-storetype", "PKCS12", "-storepass", ca.password,
        "-infile", str(csr), "-outfile", str(cert), "-rfc", "-startdate", "-1d", "-validity", "2",
        "-ext", "san=ip:127.0.0.1,dns:localhost", "-ext", "ku:c=digitalSignature,keyEncipherment",
        "-ext", "eku=serverAuth",
    )  # fmt: skip
    # The CA first (as a trusted entry), so that keytool can build the chain when the signed certificate comes back.
    _run_keytool("-importcert", "-noprompt", "-alias", "ca", "-file", str(ca.pem), *store)
    _run_keytool("-importcert", "-noprompt", "-alias", "broker", "-file", str(cert), *store)
    return BrokerTls(ca=ca, keystore=keystore, password=password)


def make_untrusted_ca_pem(directory: Path) -> Path:
    """The PEM of a new CA in `directory` that signed nothing the broker presents: trusting it must be refused."""
    return make_ca(directory, "not-the-brokers-ca").pem


@dataclass
class SecureBroker(LocalBroker):
    """A broker of `scripts/kafka-local` with PLAINTEXT plus SASL_PLAINTEXT, SSL and SASL_SSL listeners."""

    sasl_port: int
    ssl_port: int
    sasl_ssl_port: int
    tls: BrokerTls
    scram_users: dict[str, str]

    @property
    def sasl_bootstrap(self) -> str:
        return f"127.0.0.1:{self.sasl_port}"

    @property
    def ssl_bootstrap(self) -> str:
        return f"127.0.0.1:{self.ssl_port}"

    @property
    def sasl_ssl_bootstrap(self) -> str:
        return f"127.0.0.1:{self.sasl_ssl_port}"

    @property
    def log_file(self) -> Path:
        """The broker's kafka.log (log4j output), where it records every failed authentication."""
        cache = Path(os.environ.get("KAFKA_CACHE_DIR") or REPO_ROOT / ".cache" / "kafka")
        return cache.resolve() / "run" / str(self.port) / "kafka.log"

    def env(self, scram_users: dict[str, str] | None = None) -> dict[str, str]:
        users = self.scram_users if scram_users is None else scram_users
        return {
            **super().env(),
            "KAFKA_SASL_PORT": str(self.sasl_port),
            "KAFKA_SSL_PORT": str(self.ssl_port),
            "KAFKA_SASL_SSL_PORT": str(self.sasl_ssl_port),
            "KAFKA_SCRAM_USERS": ",".join(f"{name}:{password}" for name, password in users.items()),
            "KAFKA_SSL_KEYSTORE": str(self.tls.keystore),
            "KAFKA_SSL_KEYSTORE_PASSWORD": self.tls.password,
        }

    def run(
        self, *args: str, timeout_s: float, scram_users: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return run_kafka_local(*args, env=self.env(scram_users), timeout_s=timeout_s)

    def start(self, scram_users: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        """`scripts/kafka-local start`; on the running broker it only re-syncs the SCRAM users from `scram_users`."""
        return self.run("start", timeout_s=BROKER_START_TIMEOUT_S, scram_users=scram_users)


@contextmanager
def running_secure_broker(directory: Path, scram_users: dict[str, str]) -> Iterator[SecureBroker]:
    """A started `SecureBroker` with `scram_users`, its CA and certificate made in `directory`; wiped on exit.

    Fails the test (no traceback) with the script's output when the broker does not start.
    """
    tls = make_broker_tls(directory / "broker", make_ca(directory / "ca", "claims-test-ca"))
    port, sasl_port, ssl_port, sasl_ssl_port = free_ports(4)  # right before the start: keytool takes seconds
    broker = SecureBroker(
        port=port, sasl_port=sasl_port, ssl_port=ssl_port, sasl_ssl_port=sasl_ssl_port, tls=tls, scram_users=scram_users
    )
    try:
        broker.start_or_fail("Could not start scripts/kafka-local with SASL/SSL listeners")
        yield broker
    finally:
        broker.stop()


# A client constructed in a child process: kafka-python 3.0.12 leaks sockets (ResourceWarning) and, for the consumer
# and admin client, its IO thread when the constructor fails, which would surface as unraisable-exception warnings
# (errors here) in whatever test runs later. The child reports what the constructor raised and the errors kafka-python
# logged for its bootstrap attempts (they name the real cause; the exception does not).
_CHILD = r"""
import json, logging, os, sys
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer

logged = []

class Collect(logging.Handler):
    def emit(self, record):
        args = record.args if isinstance(record.args, tuple) else ()
        for arg in args:
            if isinstance(arg, BaseException) and "Unable to bootstrap" not in str(arg):  # not the final timeout
                logged.append(f"{type(arg).__module__}.{type(arg).__qualname__}: {arg}")

kafka_logger = logging.getLogger("kafka")
kafka_logger.addHandler(Collect())
kafka_logger.setLevel(logging.WARNING)
kafka_logger.propagate = False
kind, config = sys.argv[1], json.load(sys.stdin)
try:
    client = {"producer": KafkaProducer, "consumer": KafkaConsumer, "admin": KafkaAdminClient}[kind](**config)
except Exception as error:
    outcome = {"raised": f"{type(error).__module__}.{type(error).__qualname__}", "message": str(error)}
else:
    client.close()
    outcome = {"raised": None, "message": ""}
outcome["logged"] = sorted(set(logged))
print(json.dumps(outcome), flush=True)
os._exit(0)  # do not wait for an IO thread a failed constructor left behind
"""

CHILD_TIMEOUT_S = 120


@dataclass(frozen=True)
class ClientOutcome:
    raised: str | None  # qualified exception type the constructor raised, None when it connected
    message: str
    # "module.Type: str(error)" of the errors kafka-python logged for its connection attempts (final timeout excluded)
    logged: list[str]


def construct_client_in_child(kind: str, config: dict[str, object]) -> ClientOutcome:
    """Construct a kafka-python `kind` ("producer", "consumer", "admin") with `config` in a fresh interpreter."""
    result = subprocess.run(
        [sys.executable, "-c", _CHILD, kind],
        input=json.dumps(config),
        capture_output=True,
        text=True,
        timeout=CHILD_TIMEOUT_S,
        cwd=REPO_ROOT,
        check=False,
    )
    lines = result.stdout.strip().splitlines()
    if result.returncode != 0 or not lines:
        raise RuntimeError(f"client child failed ({result.returncode}): {result.stdout[-2000:]}{result.stderr[-2000:]}")
    outcome = json.loads(lines[-1])
    return ClientOutcome(raised=outcome["raised"], message=outcome["message"], logged=outcome["logged"])
