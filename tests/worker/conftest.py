"""Fixtures of the worker's tests: the loop on in-memory fakes, log capture, and a real worker process."""

from __future__ import annotations

import io
import json
import logging
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import structlog
from kafka import KafkaProducer
from prometheus_client import CollectorRegistry
from pydantic import SecretStr

from tests.ports import free_port
from tests.worker.engines import ScriptedEngine
from tests.worker.fakes import FakeBroker, FakeChangelogReader, FakeConsumer, FakeProducer
from worker.batch_log import BatchLog
from worker.evaluator import Evaluator, ProcessEvaluator
from worker.history.keys import MemberKeyer
from worker.history.partitions import HistoryPartitions
from worker.history.stage import HistoryStage
from worker.history.store import StoreMemory
from worker.kafka_io import KafkaIOError, TopicPartition
from worker.logs import configure_logging
from worker.loop import ValidationLoop
from worker.loop_options import LoopOptions
from worker.metrics import WorkerMetrics
from worker.observer import Observer, ObserverChain
from worker.probes import HealthState
from worker.rebalance import RebalanceHandler
from worker.retry import BackoffDelays
from worker.routing import Routes
from worker.settings import LogFormat
from worker.shutdown import ShutdownSignal
from worker.sink import AtLeastOnceSink, ExactlyOnceSink, Sink
from worker.stages import HistoryRuntime, Stages
from worker.topic_reader import Isolation, TopicReader, TopicRecord
from worker.topic_set import CHANGELOG_CONFIGS, TopicSet

REPO_ROOT = Path(__file__).resolve().parents[2]
INPUT, PASS, FAIL, DLQ = "in", "pass", "fail", "dlq"
REPARTITION, CHANGELOG = "by-member", "changelog"
HISTORY_KEY = SecretStr("test-history-key-0123456789")


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Harness:
    """The loop wired to fakes; `drain()` runs it until the input is consumed."""

    broker: FakeBroker
    consumer: FakeConsumer
    producer: FakeProducer
    loop: ValidationLoop
    sink: Sink
    evaluator: Evaluator
    shutdown: ShutdownSignal
    metrics: WorkerMetrics
    registry: CollectorRegistry
    health: HealthState
    clock: FakeClock
    producers: list[FakeProducer] = field(default_factory=list)
    history: HistoryRuntime | None = None

    def publish(self, value: bytes | None, *, key: bytes | None = None, partition: int = 0) -> None:
        self.broker.append(INPUT, key=key, value=value, partition=partition, headers=[("trace", b"abc")])

    def drain(self, max_iterations: int = 50) -> None:
        for _ in range(max_iterations):
            if self.consumer.closed:
                return
            self.loop.run_once()
            caught_up = all(
                self.broker.committed.get(tp, 0) == len(self.broker.topics[tp.topic][tp.partition])
                for tp in self.consumer.assigned
            )
            if caught_up:
                return
        raise AssertionError("the loop did not drain the input within the iteration bound")

    def metric(self, name: str, **labels: str) -> float:
        value = self.registry.get_sample_value(name, labels)
        return 0.0 if value is None else value

    def pending(self) -> dict[TopicPartition, int]:
        """at_least_once: the offsets whose outputs are acknowledged but whose commit has not succeeded yet."""
        assert isinstance(self.sink, AtLeastOnceSink)
        return self.sink.pending


@pytest.fixture
def make_harness() -> Callable[..., Harness]:
    def build(
        *,
        exactly_once: bool = False,
        partitions: int = 2,
        replaceable_producer: bool = True,
        new_producers_fail_with: KafkaIOError | None = None,
        engine: Any = None,
        observer: Observer | None = None,
        children: ProcessEvaluator | None = None,
        batch_max_records: int = 100,
        history: bool = False,
        history_partitions: int = 2,
        state_dir: Path | None = None,
        retention_days: int = 456,
        broker: FakeBroker | None = None,
    ) -> Harness:
        """The loop on fakes. `new_producers_fail_with`: every replacement producer fails its first delivery so.

        `history`: claim history on (needs the real rule engine as `engine`), stores in memory or in `state_dir`;
        `broker`: an existing fake broker (a worker restarted on the same topics).
        """
        broker = broker or FakeBroker()
        for topic, count in (
            (INPUT, partitions), (PASS, 3), (FAIL, 3), (DLQ, 1),
            (REPARTITION, history_partitions), (CHANGELOG, history_partitions),
        ):  # fmt: skip
            if topic not in broker.topics:
                broker.create(topic, count)
        registry = CollectorRegistry()
        scripted = engine or ScriptedEngine()
        metrics = WorkerMetrics(registry, version="test", ruleset=scripted.ruleset)
        chain = ObserverChain([observer] if observer is not None else [metrics, BatchLog()])
        consumer = FakeConsumer(broker, *((INPUT, REPARTITION) if history else (INPUT,)))
        producers = [FakeProducer(broker, transactional=exactly_once)]

        def new_producer() -> FakeProducer:
            producers.append(FakeProducer(broker, transactional=exactly_once))
            if new_producers_fail_with is not None:
                producers[-1].fail_next["commit_transaction" if exactly_once else "flush"].append(
                    new_producers_fail_with
                )
            return producers[-1]

        factory = new_producer if replaceable_producer else None
        sink: Sink = (
            ExactlyOnceSink(consumer=consumer, producer=producers[0], producer_factory=factory)
            if exactly_once
            else AtLeastOnceSink(consumer=consumer, producer=producers[0], producer_factory=factory)
        )
        runtime = None
        keyer = None
        if history:
            keyer = MemberKeyer(HISTORY_KEY)
            partitions_of_history = HistoryPartitions(
                consumer=consumer,
                changelog=FakeChangelogReader(broker, CHANGELOG),
                repartition_topic=REPARTITION,
                state_dir=state_dir,
                memory=StoreMemory(cache_bytes=1 << 20, write_buffer_bytes=1 << 20),
                observer=chain,
            )
            stage = HistoryStage(
                engine=scripted,
                changelog_topic=CHANGELOG,
                stores=partitions_of_history.stores,
                retention_days=retention_days,
            )
            runtime = HistoryRuntime(REPARTITION, partitions_of_history, stage)
        consumer.subscribe(
            RebalanceHandler(sink=sink, observer=chain, history=runtime.partitions if runtime is not None else None)
        )
        clock = FakeClock()
        shutdown = ShutdownSignal(grace_s=5.0)
        health = HealthState()
        evaluator = Evaluator(scripted, max_record_bytes=1024 * 1024, children=children, history=keyer)
        routes = Routes(
            pass_topic=PASS,
            fail_topic=FAIL,
            dlq_topic=DLQ,
            worker_id="worker-test-1",
            max_record_bytes=1024 * 1024,
            history_topic=REPARTITION if history else None,
        )
        loop = ValidationLoop(
            consumer=consumer,
            sink=sink,
            stages=Stages(evaluator=evaluator, routes=routes, history=runtime),
            options=LoopOptions(
                input_topic=INPUT, batch_max_records=batch_max_records, max_outage_s=60.0, probe_interval_s=0.0
            ),
            shutdown=shutdown,
            observer=chain,
            health=health,
            clock=clock,
            backoff=BackoffDelays(initial_s=0.001, max_s=0.001),
        )
        return Harness(
            broker,
            consumer,
            producers[0],
            loop,
            sink,
            evaluator,
            shutdown,
            metrics,
            registry,
            health,
            clock,
            producers,
            runtime,
        )

    return build


@pytest.fixture
def captured_logs() -> Iterator[io.StringIO]:
    """Worker logs as JSON lines at debug level, in memory; logging is restored afterwards."""
    stream = io.StringIO()
    configure_logging(LogFormat.JSON, "debug", stream=stream)
    yield stream
    structlog.reset_defaults()
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_claims_worker", False):
            root.removeHandler(handler)


def json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


# --- real broker helpers ------------------------------------------------------------------------------------------


Topics = TopicSet


@pytest.fixture
def worker_topics(new_topic: Callable[..., str]) -> Callable[..., Topics]:
    """Fresh topics for a worker: input, outputs and claim history's (the changelog compacted)."""

    def create(partitions: int = 3, history_partitions: int = 2) -> Topics:
        return TopicSet(
            input=new_topic("in", partitions=partitions),
            passed=new_topic("pass", partitions=2),
            failed=new_topic("fail", partitions=2),
            dlq=new_topic("dlq", partitions=1),
            repartition=new_topic("by-member", partitions=history_partitions),
            changelog=new_topic("changelog", partitions=history_partitions, config=dict(CHANGELOG_CONFIGS)),
        )

    return create


class WorkerProcess:
    """`claims-worker run` as a real subprocess, configured through the environment; logs go to a file."""

    def __init__(self, bootstrap: str, topics: Topics, log_path: Path, **settings: str) -> None:
        self.metrics_port = free_port()
        self.log_path = log_path
        env = {key: value for key, value in os.environ.items() if not key.startswith("CLAIMS_")}
        env.update(topics.env())
        env.update(
            {
                "CLAIMS_BOOTSTRAP_SERVERS": bootstrap,
                "CLAIMS_METRICS_PORT": str(self.metrics_port),
                "CLAIMS_METRICS_HOST": "127.0.0.1",
                "CLAIMS_LOG_FORMAT": "json",
                "CLAIMS_SHUTDOWN_GRACE_S": "20",
                "CLAIMS_HISTORY_KEY": HISTORY_KEY.get_secret_value(),
                "CLAIMS_STATE_DIR": str(log_path.parent / f"state-{log_path.stem}"),
                "PYTHONUNBUFFERED": "1",
            }
        )
        env.update({f"CLAIMS_{key.upper()}": value for key, value in settings.items()})
        self.log_file = log_path.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "worker.cli", "run"],
            cwd=REPO_ROOT,
            env=env,
            stdout=self.log_file,
            stderr=subprocess.STDOUT,
        )

    def logs(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def events(self) -> list[dict[str, Any]]:
        return json_lines(self.logs())

    def scrape(self, path: str = "/metrics") -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}{path}", timeout=5) as response:
            body: bytes = response.read()
            return body.decode()

    def metric(self, name: str) -> float:
        """Sum of the samples of `name` (a name, or a name with labels); NaN while the endpoint is not up."""
        try:
            text = self.scrape()
        except OSError:
            return float("nan")
        total = 0.0
        found = False
        for line in text.splitlines():
            if line.startswith(name + " ") or line.startswith(name + "{"):
                total += float(line.rsplit(" ", 1)[1])
                found = True
        return total if found else float("nan")

    def wait_for_event(
        self, event: str, timeout_s: float = 60.0, predicate: Callable[[dict[str, Any]], bool] | None = None
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for line in self.events():
                if line.get("event") == event and (predicate is None or predicate(line)):
                    return line
            if self.process.poll() is not None:
                raise AssertionError(
                    f"worker exited with {self.process.returncode} before {event}:\n{self.logs()[-3000:]}"
                )
            time.sleep(0.1)
        raise AssertionError(f"no {event} within {timeout_s}s:\n{self.logs()[-3000:]}")

    def stop(self, sig: int = signal.SIGTERM, timeout_s: float = 30.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            return self.process.wait(timeout=timeout_s)
        finally:
            self.log_file.close()

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=30)
        self.log_file.close()


@pytest.fixture
def start_worker(kafka_bootstrap: str, tmp_path: Path) -> Iterator[Callable[..., WorkerProcess]]:
    started: list[WorkerProcess] = []

    def start(topics: Topics, **settings: str) -> WorkerProcess:
        worker = WorkerProcess(kafka_bootstrap, topics, tmp_path / f"worker-{len(started)}.log", **settings)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.kill()


def publish(
    bootstrap: str,
    topic: str,
    records: Sequence[tuple[bytes | None, bytes]],
    *,
    flush_timeout_s: float = 60,
    **producer_config: Any,
) -> list[tuple[int, int]]:
    """Send `(key, value)` records; returns the `(partition, offset)` of each, in order.

    `producer_config` is passed to KafkaProducer on top of `acks="all"` and `linger_ms=5` (e.g. `max_request_size`).
    """
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5, **producer_config)
    try:
        futures = [producer.send(topic, key=key, value=value) for key, value in records]
        producer.flush(timeout=flush_timeout_s)
        placed = [future.get(timeout=1) for future in futures]
    finally:
        producer.close(timeout=10)
    return [(metadata.partition, metadata.offset) for metadata in placed]


def read_outputs(
    bootstrap: str,
    topics: tuple[str, ...],
    *,
    expected: int,
    timeout_s: float = 90.0,
    isolation: Isolation = "read_committed",
) -> list[TopicRecord]:
    """Every record of `topics` (from the beginning), waiting until at least `expected` arrived or the timeout."""
    with TopicReader(bootstrap, topics, isolation=isolation, client_id="tests-reader") as reader:
        outputs = reader.read_until_count(expected, timeout_s=timeout_s)
        # Anything beyond `expected` (a duplicate) should be visible too: one more short drain.
        return outputs + reader.poll(500)
