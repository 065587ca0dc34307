"""`claims-worker run`: wire settings, logs, metrics, probes, Kafka clients, the rebalance listener and the loop.

Start-up order: logging, signal handlers and the probe server first (so `/healthz` answers and a SIGTERM is
obeyed while connecting), then the rule engine, then the Kafka clients (retried with backoff while the broker is
unreachable, up to `max_outage_s`), a check that all four topics exist, and the loop.
"""

from __future__ import annotations

import contextlib
import gc
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import structlog
from prometheus_client import CollectorRegistry

from rules.engine import RuleEngine, load_engine
from rules.history import default_retention_days
from worker import __version__
from worker.batch_log import BatchLog
from worker.evaluator import Evaluator, ProcessEvaluator, start_evaluator
from worker.exit_codes import ExitCode
from worker.history.keys import MemberKeyer
from worker.history.partitions import HistoryPartitions
from worker.history.stage import HistoryStage
from worker.history.store import StoreMemory
from worker.kafka_io import (
    BrokerUnavailableError,
    KafkaChangelogReader,
    KafkaConfigError,
    KafkaConsumerAdapter,
    KafkaIOError,
    KafkaProducerAdapter,
    call_with_deadline,
    missing_topics,
)
from worker.logs import configure_logging
from worker.loop import ValidationLoop
from worker.loop_options import LoopOptions
from worker.metrics import WorkerMetrics
from worker.observer import ObserverChain
from worker.probes import HealthState, ProbeServer
from worker.rebalance import KafkaRebalanceListener, RebalanceHandler
from worker.retry import BackoffDelays, BrokerOutageError, OutageClock, OutageLog
from worker.routing import Routes
from worker.settings import DeliveryMode, WorkerSettings, env_name, unknown_env_settings
from worker.shutdown import ShutdownSignal, install_signal_handlers
from worker.sink import AtLeastOnceSink, ExactlyOnceSink, Sink
from worker.stages import HistoryRuntime, Stages

T = TypeVar("T")


class StartupError(Exception):
    """The worker cannot start; carries the exit code."""

    def __init__(self, exit_code: ExitCode, message: str) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def run_worker(settings: WorkerSettings, *, install_signals: bool = True) -> ExitCode:
    """Run the worker until stopped; returns the process exit code (see `worker.exit_codes`)."""
    configure_logging(settings.log_format, settings.log_level, static_context={"worker_id": settings.worker_id})
    log = structlog.get_logger()
    for name in unknown_env_settings():
        log.warning("config.unknown_setting", variable=name)

    shutdown = ShutdownSignal(grace_s=settings.shutdown_grace_s)
    if install_signals:
        install_signal_handlers(
            shutdown,
            on_first=lambda signal_name: log.info("worker.shutdown_requested", signal=signal_name),
            on_forced=lambda why: log.error("worker.forced_exit", reason=why),
        )
    # Liveness: the loop may legitimately block for a whole outage bound plus one request.
    health = HealthState(stall_after_s=settings.max_outage_s + settings.request_timeout_ms / 1000 + 60.0)
    try:
        engine = _load_engine(settings)
        keyer = _member_keyer(settings)
        # Forked now, before the probe server's and Kafka's threads exist (see worker/evaluator.py); the signal
        # watcher thread exists, but holds no lock while it waits for a signal.
        evaluator = start_evaluator(engine, settings.evaluator_processes, history=keyer)
    except StartupError as error:
        log.error("worker.start_failed", reason=str(error), exit_code=int(error.exit_code))
        return error.exit_code
    try:
        return _serve(settings, Engines(engine, evaluator, keyer), health, shutdown)
    finally:
        if evaluator is not None:
            evaluator.close()


@dataclass(frozen=True, slots=True)
class Engines:
    """What evaluates claims: the rules, their child processes (None: in the loop's thread), the member keyer
    (None: claim history off)."""

    engine: RuleEngine
    children: ProcessEvaluator | None
    keyer: MemberKeyer | None


def _serve(settings: WorkerSettings, engines: Engines, health: HealthState, shutdown: ShutdownSignal) -> ExitCode:
    log = structlog.get_logger()
    engine = engines.engine
    try:
        registry = CollectorRegistry()
        metrics = WorkerMetrics(registry, version=__version__, ruleset=engine.ruleset)
        server = _start_probe_server(settings, registry, health)
    except StartupError as error:
        log.error("worker.start_failed", reason=str(error), exit_code=int(error.exit_code))
        return error.exit_code
    log.info("metrics.serving", host=settings.metrics_host, port=server.port, paths=["/metrics", "/healthz", "/readyz"])
    log.info(
        "worker.starting",
        version=__version__,
        ruleset_id=engine.ruleset.id,
        ruleset_version=engine.ruleset.version,
        settings=settings.public_summary(),
    )
    try:
        return _run(settings, engines, metrics=metrics, health=health, shutdown=shutdown)
    except StartupError as error:
        log.error("worker.start_failed", reason=str(error), exit_code=int(error.exit_code))
        return error.exit_code
    except Exception:  # a bug: log it once, structured, and let the orchestrator restart us
        log.exception("worker.crashed", exit_code=int(ExitCode.FAILURE))
        return ExitCode.FAILURE
    finally:
        server.stop()


def _run(
    settings: WorkerSettings, engines: Engines, *, metrics: WorkerMetrics, health: HealthState, shutdown: ShutdownSignal
) -> ExitCode:
    log = structlog.get_logger()
    with contextlib.ExitStack() as on_failure:  # closes what was opened if start-up does not get to the loop
        clients = _connect_clients(settings, shutdown, on_failure)
        if clients is None:
            return ExitCode.OK  # a stop was requested while connecting
        consumer, producer = clients
        _check_topics(consumer, settings)
        observer = ObserverChain([metrics, BatchLog()])
        sink = _sink(settings, consumer, producer)
        history = _history(settings, engines.engine, consumer, observer, shutdown) if engines.keyer else None
        if history is None and engines.keyer is not None:
            return ExitCode.OK  # a stop was requested while connecting
        if history is not None:
            on_failure.callback(history.partitions.close)
        handler = RebalanceHandler(sink=sink, observer=observer, history=history.partitions if history else None)
        topics = [settings.input_topic, *([history.topic] if history else [])]
        consumer.subscribe(topics, KafkaRebalanceListener(handler))
        evaluator = Evaluator(
            engines.engine, max_record_bytes=settings.max_record_bytes, children=engines.children, history=engines.keyer
        )
        loop = ValidationLoop(
            consumer=consumer,
            sink=sink,
            stages=Stages(evaluator=evaluator, routes=Routes.from_settings(settings), history=history),
            options=LoopOptions.from_settings(settings),
            shutdown=shutdown,
            observer=observer,
            health=health,
        )
        on_failure.pop_all()
    log.info(
        "worker.started", delivery=settings.delivery.value, input_topic=settings.input_topic, history=bool(history)
    )
    freeze_long_lived_objects()
    try:
        exit_code = loop.run()
    finally:
        if history is not None:
            history.partitions.close()
    log.info(
        "worker.stopped",
        exit_code=int(exit_code),
        batches=loop.batches,
        records=loop.records,
        outcomes=loop.outcomes,
        retries=loop.retries,
        reason=shutdown.reason or None,
    )
    return exit_code


def _connect_clients(
    settings: WorkerSettings, shutdown: ShutdownSignal, on_failure: contextlib.ExitStack
) -> tuple[KafkaConsumerAdapter, KafkaProducerAdapter] | None:
    """The consumer, then the producer, each closed by `on_failure` if start-up fails later; None if a stop was
    requested while connecting."""
    consumer = _connect(
        lambda timeout_s: KafkaConsumerAdapter(settings, bootstrap_timeout_s=timeout_s),
        settings,
        shutdown,
        what="consumer",
    )
    if consumer is None:
        return None
    on_failure.callback(consumer.close, 2.0)
    producer = _connect(
        lambda timeout_s: KafkaProducerAdapter(settings, bootstrap_timeout_s=timeout_s),
        settings,
        shutdown,
        what="producer",
    )
    if producer is None:
        return None
    on_failure.callback(producer.close, 2.0)
    return consumer, producer


def _member_keyer(settings: WorkerSettings) -> MemberKeyer | None:
    if not settings.history_enabled:
        return None
    if settings.history_key is None:
        raise StartupError(
            ExitCode.CONFIG,
            f"claim history is on ({env_name('history')}=on, the default) and needs {env_name('history_key')}, "
            f"a secret of at least 16 characters that keys member ids; or set {env_name('history')}=off",
        )
    return MemberKeyer(settings.history_key)


def _history(
    settings: WorkerSettings,
    engine: RuleEngine,
    consumer: KafkaConsumerAdapter,
    observer: ObserverChain,
    shutdown: ShutdownSignal,
) -> HistoryRuntime | None:
    """Claim history's partitions and stage (None if a stop was requested while connecting)."""
    _check_copartitioned(consumer, settings)
    changelog = _connect(
        lambda timeout_s: KafkaChangelogReader(settings, bootstrap_timeout_s=timeout_s),
        settings,
        shutdown,
        what="changelog reader",
    )
    if changelog is None:
        return None
    partitions = HistoryPartitions(
        consumer=consumer,
        changelog=changelog,
        repartition_topic=settings.repartition_topic,
        state_dir=settings.worker_state_dir,
        memory=StoreMemory(),
        observer=observer,
        request_timeout_s=settings.request_timeout_ms / 1000,
    )
    retention = settings.history_retention_days or default_retention_days(engine.policy)
    stage = HistoryStage(
        engine=engine, changelog_topic=settings.changelog_topic, stores=partitions.stores, retention_days=retention
    )
    return HistoryRuntime(settings.repartition_topic, partitions, stage)


def _sink(settings: WorkerSettings, consumer: KafkaConsumerAdapter, producer: KafkaProducerAdapter) -> Sink:
    def new_producer() -> KafkaProducerAdapter:
        return KafkaProducerAdapter(settings)

    request_timeout_s = settings.request_timeout_ms / 1000
    if settings.delivery is DeliveryMode.EXACTLY_ONCE:
        return ExactlyOnceSink(
            consumer=consumer, producer=producer, producer_factory=new_producer, abort_timeout_s=request_timeout_s
        )
    return AtLeastOnceSink(
        consumer=consumer, producer=producer, producer_factory=new_producer, commit_timeout_s=request_timeout_s
    )


def freeze_long_lived_objects() -> None:
    """Move everything alive now (rule engine, policy tables, clients, modules) out of the cyclic GC's reach.

    Those objects live as long as the process; without this every full collection, triggered by the
    allocations of each batch, rescans all of them (measured in `make bench`: see the README's Performance).
    """
    gc.collect()
    gc.freeze()


def _load_engine(settings: WorkerSettings) -> RuleEngine:
    try:
        return load_engine(settings.payer_policy_file, settings.policy_dir)
    except Exception as error:  # noqa: BLE001 - any failure to load policy data is a configuration problem
        raise StartupError(
            ExitCode.CONFIG,
            f"could not load the rule engine ({env_name('payer_policy_file')}={settings.payer_policy_file}, "
            f"{env_name('policy_dir')}={settings.policy_dir}): {type(error).__name__}: {str(error)[:300]}",
        ) from None


def _start_probe_server(settings: WorkerSettings, registry: CollectorRegistry, health: HealthState) -> ProbeServer:
    try:
        server = ProbeServer(host=settings.metrics_host, port=settings.metrics_port, registry=registry, health=health)
        return server.start()
    except OSError as error:
        raise StartupError(
            ExitCode.CONFIG,
            f"cannot serve metrics on {settings.metrics_host}:{settings.metrics_port} "
            f"({env_name('metrics_port')}): {error.strerror or error}",
        ) from None


def _connect(
    factory: Callable[[float], T], settings: WorkerSettings, shutdown: ShutdownSignal, *, what: str
) -> T | None:
    """Create a Kafka client (`factory(bootstrap_timeout_s)`), retrying while the broker is unreachable; None if a
    stop was requested meanwhile. Each attempt and each wait ends before the outage bound, so an unreachable broker
    ends start-up with exit 4 within about `CLAIMS_MAX_OUTAGE_S`."""
    outage = OutageClock(max_outage_s=settings.max_outage_s)
    outage_log = OutageLog()
    backoff = BackoffDelays(initial_s=settings.retry_backoff_initial_s, max_s=settings.retry_backoff_max_s)
    while not shutdown.requested:
        started = time.monotonic()
        try:
            client = factory(max(0.5, outage.remaining_s()))
        except KafkaConfigError as error:
            raise StartupError(ExitCode.CONFIG, f"the broker rejected the {what} configuration: {error}") from None
        except BrokerUnavailableError as error:
            # Logged first: an attempt bounded by the outage's remaining time may itself end the outage.
            outage_log.failed(str(error), outage_s=outage.outage_s or time.monotonic() - started, client=what)
            try:
                outage.failed(str(error), started=started)
            except BrokerOutageError as outage_error:
                raise StartupError(ExitCode.BROKER_OUTAGE, str(outage_error)) from None
        except KafkaIOError as error:
            raise StartupError(ExitCode.FAILURE, f"could not create the Kafka {what}: {error}") from None
        else:
            outage_log.recovered(outage_s=outage.outage_s)
            return client
        shutdown.wait(min(backoff.next_delay_s(), max(0.0, outage.remaining_s())))
    return None


def _check_copartitioned(consumer: KafkaConsumerAdapter, settings: WorkerSettings) -> None:
    """The changelog must have the repartition topic's partition count: partition n's store is changelog n."""

    def count(topic: str) -> int:
        return len(call_with_deadline(lambda: consumer.partitions_for(topic), 10.0, what="metadata"))

    try:
        counts = {topic: count(topic) for topic in (settings.repartition_topic, settings.changelog_topic)}
    except KafkaIOError as error:
        raise StartupError(ExitCode.BROKER_OUTAGE, f"cannot read the history topics' metadata: {error}") from None
    if len(set(counts.values())) != 1:
        raise StartupError(
            ExitCode.CONFIG,
            f"{settings.changelog_topic} has {counts[settings.changelog_topic]} partitions and "
            f"{settings.repartition_topic} {counts[settings.repartition_topic]}: claim history needs the same count "
            "(the partition count of both must never change; see the README's claim-history section)",
        )


def _check_topics(consumer: KafkaConsumerAdapter, settings: WorkerSettings) -> None:
    try:
        existing: Any = call_with_deadline(consumer.topics, settings.request_timeout_ms / 1000, what="list-topics")
    except KafkaConfigError as error:
        raise StartupError(ExitCode.CONFIG, f"cannot list topics: {error}") from None
    except KafkaIOError as error:
        raise StartupError(ExitCode.BROKER_OUTAGE, f"cannot list topics: {error}") from None
    missing = missing_topics(existing, settings)
    if missing:
        raise StartupError(
            ExitCode.CONFIG,
            f"missing topics: {', '.join(missing)} (create them with `claims-worker topics create`, "
            f"or set {env_name('input_topic')}, {env_name('pass_topic')}, {env_name('fail_topic')}, "
            f"{env_name('dlq_topic')})",
        )
