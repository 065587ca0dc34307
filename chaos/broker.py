"""A throwaway broker of `scripts/kafka-local` on free ports that the harness may stop and start on the same data."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

from kafka import KafkaAdminClient

from worker.topic_set import TopicSet

REPO_ROOT = Path(__file__).resolve().parent.parent
KAFKA_LOCAL = REPO_ROOT / "scripts" / "kafka-local"

START_TIMEOUT_S = 900  # a cold cache fetches the jars with Maven first
STOP_TIMEOUT_S = 120


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class BrokerError(RuntimeError):
    """`scripts/kafka-local` failed."""


class Broker:
    """`scripts/kafka-local` on `port`: `start()` formats or reuses its data dir, `stop()` keeps it, `wipe()` not."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.starts = 0

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _run(self, *args: str, timeout_s: float) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "KAFKA_PORT": str(self.port), "KAFKA_PYTHON": sys.executable}
        return subprocess.run(  # noqa: S603 - our own script, fixed arguments
            [str(KAFKA_LOCAL), *args], env=env, capture_output=True, text=True, timeout=timeout_s, check=False
        )

    def start(self) -> float:
        """Start (same data dir as before, if any) and wait until it answers; returns the seconds it took."""
        began = time.monotonic()
        result = self._run("start", timeout_s=START_TIMEOUT_S)
        lines = result.stdout.strip().splitlines()
        if result.returncode != 0 or not lines or lines[-1] != f"bootstrap={self.bootstrap}":
            raise BrokerError(f"kafka-local start exited {result.returncode}: {result.stderr[-2000:]}")
        self.starts += 1
        return time.monotonic() - began

    def stop(self) -> float:
        """SIGTERM (controlled shutdown), keeping the data; returns the seconds it took."""
        began = time.monotonic()
        result = self._run("stop", timeout_s=STOP_TIMEOUT_S)
        if result.returncode != 0:
            raise BrokerError(f"kafka-local stop exited {result.returncode}: {result.stderr[-2000:]}")
        return time.monotonic() - began

    def wipe(self) -> None:
        """Stop and delete the data dir; never raises (it runs on every exit path)."""
        with contextlib.suppress(Exception):
            self._run("stop", "--wipe", timeout_s=STOP_TIMEOUT_S)

    def admin(self) -> KafkaAdminClient:
        return KafkaAdminClient(bootstrap_servers=self.bootstrap, client_id="chaos-admin", request_timeout_ms=30_000)

    def create_topics(self, prefix: str, *, partitions: int, output_partitions: int) -> TopicSet:
        """Fresh topics named `<prefix>.<random>.<role>`: the input and claim history's two (the changelog
        compacted) with `partitions`, the outputs with `output_partitions` (`TopicSet.new_topics`)."""
        topics = TopicSet.prefixed(f"{prefix}.{uuid.uuid4().hex[:6]}")
        admin = self.admin()
        try:
            admin.create_topics(
                topics.new_topics(partitions=partitions, output_partitions=output_partitions),
                wait_for_metadata=True,
            )
        finally:
            admin.close()
        return topics
