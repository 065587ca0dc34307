"""`scripts/kafka-local` driven from the tests: the session broker of tests/conftest.py and, through `SecureBroker`
(tests/kafka/security.py), the brokers with SASL/TLS listeners.

The one place that knows the script's environment (KAFKA_PORT, KAFKA_PYTHON), its timeouts and how its `start`
reports success, so that every broker a test starts is started, checked and wiped the same way.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
KAFKA_LOCAL = REPO_ROOT / "scripts" / "kafka-local"

BROKER_START_TIMEOUT_S = 900  # a cold cache fetches the broker's jars with Maven first
BROKER_STOP_TIMEOUT_S = 120


@dataclass
class LocalBroker:
    """A broker of `scripts/kafka-local` with a PLAINTEXT listener on `port`, which the tests start and must stop."""

    port: int

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        return {**os.environ, "KAFKA_PORT": str(self.port), "KAFKA_PYTHON": sys.executable}

    def run(self, *args: str, timeout_s: float) -> subprocess.CompletedProcess[str]:
        """`scripts/kafka-local *args` for this broker; a non-zero exit is returned, not raised."""
        return run_kafka_local(*args, env=self.env(), timeout_s=timeout_s)

    def start(self) -> subprocess.CompletedProcess[str]:
        """`scripts/kafka-local start`: starts the broker, or reuses it when it already runs."""
        return self.run("start", timeout_s=BROKER_START_TIMEOUT_S)

    def stop(self) -> subprocess.CompletedProcess[str]:
        """`scripts/kafka-local stop --wipe`: stops the broker and deletes its data."""
        return self.run("stop", "--wipe", timeout_s=BROKER_STOP_TIMEOUT_S)

    def start_or_fail(self, failure: str) -> str:
        """Start the broker and return its bootstrap address (`host:port`).

        When the script fails or does not end with this broker's `bootstrap=` line, the test fails (no traceback)
        with `failure`, the exit code and the script's output: Kafka tests are never skipped.
        """
        started = self.start()
        if started.returncode != 0 or not started.stdout.strip().endswith(f"bootstrap={self.bootstrap}"):
            pytest.fail(
                f"{failure}\nscripts/kafka-local start exited {started.returncode}\n"
                f"--- stdout ---\n{started.stdout[-3000:]}\n--- stderr ---\n{started.stderr[-3000:]}",
                pytrace=False,
            )
        return self.bootstrap


def run_kafka_local(*args: str, env: dict[str, str], timeout_s: float) -> subprocess.CompletedProcess[str]:
    """`scripts/kafka-local *args` in `env` (text output captured); a non-zero exit is returned, not raised."""
    return subprocess.run(
        [str(KAFKA_LOCAL), *args], env=env, capture_output=True, text=True, timeout=timeout_s, check=False
    )
